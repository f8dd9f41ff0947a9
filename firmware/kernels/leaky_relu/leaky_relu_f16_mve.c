/* Half-precision leaky relu for Helium (MVE, Cortex-M55), forward and input gradient: 8 halves
 * per vector, whole vectors unpredicated, then one predicated tail (in a predicated loop gcc
 * spends as many instructions again moving the predicate in and out of VPR). vmulq_f16 rounds
 * the exact product of two halves once, as the portable kernels' float product rounded to
 * half (leaky_relu_f16.c, leaky_relu_backward_f16.c), and vaddq_f16 the accumulation
 * (tt_add_grad_f16's): the same bits, so
 * tinytrain/ops/leaky_relu.py models both. The product is taken where 0 >= x (vcmpgeq: false
 * for a NaN, as C's <=; MVE's le would be true), so a NaN x is selected, never multiplied
 * (MVE's arithmetic returns the default NaN). Empty where __ARM_FEATURE_MVE has no floating
 * point. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static float16x8_t tt_dup_half(tt_f16 h)
{
    float16_t v;
    memcpy(&v, &h, 2);
    return vdupq_n_f16(v);
}

static inline float16x8_t leaky(float16x8_t v, float16x8_t a, float16x8_t zero)
{
    return vpselq_f16(vmulq_f16(v, a), v, vcmpgeq_f16(zero, v));
}

static inline float16x8_t leaky_grad(float16x8_t x, float16x8_t d, float16x8_t a, float16x8_t zero)
{
    return vpselq_f16(vmulq_f16(d, a), d, vcmpgeq_f16(zero, x));
}

void tt_leaky_relu_f16_mve(const tt_f16 *x, int32_t n, tt_f16 alpha, tt_f16 *y)
{
    const float16_t *xh = (const float16_t *)x;
    float16_t *yh = (float16_t *)y;
    const float16x8_t a = tt_dup_half(alpha), zero = vdupq_n_f16(0.0f);
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8) vst1q_f16(yh + i, leaky(vld1q_f16(xh + i), a, zero));
    if (i < n) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        vstrhq_p_f16(yh + i, leaky(vldrhq_z_f16(xh + i, p), a, zero), p);
    }
}

void tt_leaky_relu_grad_input_f16_mve(int32_t n, const tt_f16 *x, tt_f16 alpha, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x)
{
    const float16_t *xh = (const float16_t *)x, *gh = (const float16_t *)grad_y;
    float16_t *oh = (float16_t *)grad_x;
    const float16x8_t a = tt_dup_half(alpha), zero = vdupq_n_f16(0.0f);
    int32_t i;
    if (accumulate) {
        for (i = 0; i + 8 <= n; i += 8)
            vst1q_f16(oh + i, vaddq_f16(vld1q_f16(oh + i), leaky_grad(vld1q_f16(xh + i), vld1q_f16(gh + i), a, zero)));
    } else {
        for (i = 0; i + 8 <= n; i += 8) vst1q_f16(oh + i, leaky_grad(vld1q_f16(xh + i), vld1q_f16(gh + i), a, zero));
    }
    if (i < n) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        float16x8_t g = leaky_grad(vldrhq_z_f16(xh + i, p), vldrhq_z_f16(gh + i, p), a, zero);
        if (accumulate) g = vaddq_f16(vldrhq_z_f16(oh + i, p), g);
        vstrhq_p_f16(oh + i, g, p);
    }
}
#endif
