/* Helium variant (MVE, Cortex-M55) of tt_global_avg_pool_f16 (global_avg_pool_f16.c), the same
 * bits: per channel the float32 sum of the pixels in order, here 8 channels at a time in
 * float32 lanes with the same adds (tt_f16_sum_mve.h: no VCVTB/VCVTT, no float32 subnormal;
 * the short widening when a first pass found no subnormal); then, per channel, the float32
 * division by the pixel count and the rounding to half, scalar as in the portable kernel. An
 * input holding an inf or NaN, or fewer than 4 pixels, take the portable kernel. Empty where
 * __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_f16_sum_mve.h"

void tt_global_avg_pool_f16_mve(const tt_f16 *x, const tt_dims *in, tt_f16 *y)
{
    const int32_t pixels = in->h * in->w, channels = in->c;
    float sums[8];
    int32_t c0, c, what;
    if (pixels < 4 || ((what = tt_scan_f16_mve(x, pixels * channels)) & TT_F16_INF_NAN)) {
        tt_global_avg_pool_f16(x, in, y);
        return;
    }
    for (c0 = 0; c0 < channels; c0 += 8) {
        const int32_t n = channels - c0 < 8 ? channels - c0 : 8;
        tt_column_sums_f16_mve(x + c0, pixels, channels, n, sums, what & TT_F16_SUBNORMAL);
        for (c = 0; c < n; ++c) y[c0 + c] = tt_f2h(sums[c] / (float)pixels);
    }
}
#endif
