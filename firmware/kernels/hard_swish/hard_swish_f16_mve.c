/* Half-precision hard swish for Helium (MVE, Cortex-M55), forward and input gradient, computed
 * in half lanes (not the portable kernels' bits: tinytrain/ops/hard_swish.py
 * hard_swish_f16_mve / hard_swish_grad_f16_mve model these; tinytrain.precision.half_variants
 * records which one a layer runs):
 *   forward   r = x + 3, c = min(max(r, 0), 6) (vmaxnmq / vminnmq), y = x * (c * half(1/6)),
 *             each operation rounded to half; -0 below -3 and a NaN as it came (selected, as
 *             the portable kernel)
 *   gradient  0 below -3, grad_y above 3, grad_y * fma(x, half(1/3), 1/2) between (vfmaq_f16:
 *             one rounding), the default NaN at a NaN x (as the portable kernel), stored, or
 *             added to the old value (vaddq_f16)
 * Comparisons are written as gt (false for a NaN, as C's; MVE's lt would be true). Empty where
 * __ARM_FEATURE_MVE has no floating point. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

#define TT_HALF_SIXTH ((float16_t)0x1.554p-3f)     /* 1/6 rounded to half (0x3155) */
#define TT_HALF_THIRD ((float16_t)0x1.554p-2f)     /* 1/3 rounded to half (0x3555) */

static float16x8_t tt_default_nan(void)
{
    const tt_f16 bits = 0x7E00u;         /* C's NAN rounded to half */
    float16_t v;
    memcpy(&v, &bits, 2);
    return vdupq_n_f16(v);
}

void tt_hard_swish_f16_mve(const tt_f16 *x, int32_t n, tt_f16 *y)
{
    const float16_t *xh = (const float16_t *)x;
    float16_t *yh = (float16_t *)y;
    const float16x8_t zero = vdupq_n_f16(0.0f), six = vdupq_n_f16(6.0f), neg_zero = vdupq_n_f16(-0.0f);
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const float16x8_t v = vldrhq_z_f16(xh + i, p);
        const float16x8_t r = vaddq_n_f16(v, (float16_t)3.0f);
        const float16x8_t c = vminnmq_f16(vmaxnmq_f16(r, zero), six);
        const float16x8_t out = vmulq_f16(v, vmulq_n_f16(c, TT_HALF_SIXTH));
        const float16x8_t sel = vpselq_f16(neg_zero, out, vcmpgtq_f16(zero, r));
        vstrhq_p_f16(yh + i, vpselq_f16(v, sel, vcmpneq_f16(v, v)), p);
    }
}

void tt_hard_swish_grad_input_f16_mve(int32_t n, const tt_f16 *x, const tt_f16 *grad_y, int32_t accumulate,
                                      tt_f16 *grad_x)
{
    const float16_t *xh = (const float16_t *)x, *gh = (const float16_t *)grad_y;
    float16_t *oh = (float16_t *)grad_x;
    const float16x8_t zero = vdupq_n_f16(0.0f), half = vdupq_n_f16(0.5f);
    const float16x8_t three = vdupq_n_f16(3.0f), minus_three = vdupq_n_f16(-3.0f), nan = tt_default_nan();
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const float16x8_t v = vldrhq_z_f16(xh + i, p), d = vldrhq_z_f16(gh + i, p);
        float16x8_t g = vmulq_f16(d, vfmaq_n_f16(half, v, TT_HALF_THIRD));
        g = vpselq_f16(d, g, vcmpgtq_f16(v, three));
        g = vpselq_f16(zero, g, vcmpgtq_f16(minus_three, v));
        g = vpselq_f16(nan, g, vcmpneq_f16(v, v));
        if (accumulate) g = vaddq_f16(vldrhq_z_f16(oh + i, p), g);
        vstrhq_p_f16(oh + i, g, p);
    }
}
#endif
