/* Helium variant (MVE, Cortex-M55) of tt_bias_update_f16 (train_f16.c), the same bits: the
 * gradient of each bias is the float32 sum of its channel's halves over the pixels in order,
 * here 8 channels at a time in float32 lanes with the same adds (tt_f16_sum_mve.h: halves
 * widened without VCVTB/VCVTT and without float32 subnormals, by the short widening when a
 * first pass over grad_y found no subnormal); then the scalar update rule, channel by channel
 * in order. grad_y holding an inf or NaN (a loss scale that overflowed: the dynamic scale's
 * flag must stop the later channels, and MVE arithmetic returns the default NaN) and fewer
 * than 4 pixels (a dense layer's bias: nothing to win) take the portable kernel. Empty where
 * __ARM_FEATURE_MVE & 2 is not set (the portable kernel runs instead). */
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_f16_sum_mve.h"

void tt_bias_update_f16_mve(const tt_dims *out, tt_f16 *b, const tt_f16 *grad_y, const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t pixels = out->h * out->w, channels = out->c;
    float sums[8];
    int32_t c0, c, what;
    if (pixels < 4 || ((what = tt_scan_f16_mve(grad_y, pixels * channels)) & TT_F16_INF_NAN)) {
        tt_bias_update_f16(out, b, grad_y, u);      /* (a dense layer's bias: nothing to win) */
        return;
    }
    for (c0 = 0; c0 < channels; c0 += 8) {
        const int32_t n = channels - c0 < 8 ? channels - c0 : 8;
        tt_column_sums_f16_mve(grad_y + c0, pixels, channels, n, sums, what & TT_F16_SUBNORMAL);
        for (c = 0; c < n; ++c) b[c0 + c] = tt_sgd_rule_f16(b[c0 + c], sums[c], &hp, u, c0 + c);
    }
}
#endif
