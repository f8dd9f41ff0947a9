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

static inline float16x8_t hswish(float16x8_t v)
{
    const float16x8_t zero = vdupq_n_f16(0.0f);
    const float16x8_t r = vaddq_n_f16(v, (float16_t)3.0f);
    const float16x8_t c = vminnmq_f16(vmaxnmq_f16(r, zero), vdupq_n_f16(6.0f));
    const float16x8_t out = vmulq_f16(v, vmulq_n_f16(c, TT_HALF_SIXTH));
    const float16x8_t sel = vpselq_f16(vdupq_n_f16(-0.0f), out, vcmpgtq_f16(zero, r));
    return vpselq_f16(v, sel, vcmpneq_f16(v, v));
}

static inline float16x8_t hswish_grad(float16x8_t v, float16x8_t d)
{
    float16x8_t g = vmulq_f16(d, vfmaq_n_f16(vdupq_n_f16(0.5f), v, TT_HALF_THIRD));
    g = vpselq_f16(d, g, vcmpgtq_f16(v, vdupq_n_f16(3.0f)));
    g = vpselq_f16(vdupq_n_f16(0.0f), g, vcmpgtq_f16(vdupq_n_f16(-3.0f), v));
    return vpselq_f16(tt_default_nan(), g, vcmpneq_f16(v, v));
}

/* Whole vectors unpredicated, then one predicated tail (a predicated loop spends about as many
 * instructions again moving the predicate in and out of VPR). */
void tt_hard_swish_f16_mve(const tt_f16 *x, int32_t n, tt_f16 *y)
{
    const float16_t *xh = (const float16_t *)x;
    float16_t *yh = (float16_t *)y;
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8) vst1q_f16(yh + i, hswish(vld1q_f16(xh + i)));
    if (i < n) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        vstrhq_p_f16(yh + i, hswish(vldrhq_z_f16(xh + i, p)), p);
    }
}

void tt_hard_swish_grad_input_f16_mve(int32_t n, const tt_f16 *x, const tt_f16 *grad_y, int32_t accumulate,
                                      tt_f16 *grad_x)
{
    const float16_t *xh = (const float16_t *)x, *gh = (const float16_t *)grad_y;
    float16_t *oh = (float16_t *)grad_x;
    int32_t i;
    if (accumulate) {
        for (i = 0; i + 8 <= n; i += 8)
            vst1q_f16(oh + i, vaddq_f16(vld1q_f16(oh + i), hswish_grad(vld1q_f16(xh + i), vld1q_f16(gh + i))));
    } else {
        for (i = 0; i + 8 <= n; i += 8) vst1q_f16(oh + i, hswish_grad(vld1q_f16(xh + i), vld1q_f16(gh + i)));
    }
    if (i < n) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        float16x8_t g = hswish_grad(vldrhq_z_f16(xh + i, p), vldrhq_z_f16(gh + i, p));
        if (accumulate) g = vaddq_f16(vldrhq_z_f16(oh + i, p), g);
        vstrhq_p_f16(oh + i, g, p);
    }
}
#endif
