/* Helium variant (MVE, Cortex-M55) of tt_avg_pool2d_f16 (avg_pool2d_f16.c), the same bits: per
 * output, the float32 sum of the window's in-bounds halves (rows, then columns, in order),
 * here 8 channels at a time in float32 lanes with the same adds (tt_f16_sum_mve.h: halves
 * widened by integer operations, no VCVTB/VCVTT, no float32 subnormal); then, per channel,
 * the division by the count, the activation and the rounding to half in scalar as there
 * (MVE has no vector division, and a division of its own would need its own proof). An input
 * holding an inf or NaN goes to the portable kernel (MVE arithmetic returns the default NaN,
 * the scalar code keeps the payload), found by one pass over it, 8 halves a vector. Empty
 * where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_f16_sum_mve.h"

void tt_avg_pool2d_f16_mve(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    const int32_t channels = out->c;
    float sums[8];
    int32_t oh, ow, c0, l;
    if (tt_any_inf_nan_f16_mve(x, in->h * in->w * in->c)) {
        tt_avg_pool2d_f16(x, in, kh, kw, g, act, y, out);
        return;
    }
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            const float count = (float)((rows.hi - rows.lo) * (cols.hi - cols.lo));
            const tt_f16 *win = x + (rows.lo * in->w + cols.lo) * in->c;
            tt_f16 *yo = y + (oh * out->w + ow) * channels;
            const int32_t nr = rows.hi - rows.lo, nc = cols.hi - cols.lo;
            for (c0 = 0; c0 < channels; c0 += 8) {
                const int32_t n = channels - c0 < 8 ? channels - c0 : 8;
                if (n == 8) tt_window_sums8_f16_mve(win + c0, nr, nc, in->w * in->c, in->c, 8, sums, 1);
                else tt_window_sums8_f16_mve(win + c0, nr, nc, in->w * in->c, in->c, n, sums, 0);
                for (l = 0; l < n; ++l) yo[c0 + l] = tt_f2h(tt_act_f16(sums[l] / count, act));
            }
        }
    }
}
#endif
