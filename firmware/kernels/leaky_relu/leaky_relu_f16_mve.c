/* Half-precision leaky relu for Helium (MVE, Cortex-M55), forward and input gradient: 8 halves
 * per vector, a predicated tail. vmulq_f16 rounds the exact product of two halves once, as the
 * portable kernels' float product rounded to half (leaky_relu_f16.c, leaky_relu_backward_f16.c)
 * and vaddq_f16 the accumulation (tt_add_grad_f16's): the same bits, so
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

void tt_leaky_relu_f16_mve(const tt_f16 *x, int32_t n, tt_f16 alpha, tt_f16 *y)
{
    const float16_t *xh = (const float16_t *)x;
    float16_t *yh = (float16_t *)y;
    const float16x8_t a = tt_dup_half(alpha), zero = vdupq_n_f16(0.0f);
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const float16x8_t v = vldrhq_z_f16(xh + i, p);
        vstrhq_p_f16(yh + i, vpselq_f16(vmulq_f16(v, a), v, vcmpgeq_f16(zero, v)), p);
    }
}

void tt_leaky_relu_grad_input_f16_mve(int32_t n, const tt_f16 *x, tt_f16 alpha, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x)
{
    const float16_t *xh = (const float16_t *)x, *gh = (const float16_t *)grad_y;
    float16_t *oh = (float16_t *)grad_x;
    const float16x8_t a = tt_dup_half(alpha), zero = vdupq_n_f16(0.0f);
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const float16x8_t d = vldrhq_z_f16(gh + i, p);
        float16x8_t g = vpselq_f16(vmulq_f16(d, a), d, vcmpgeq_f16(zero, vldrhq_z_f16(xh + i, p)));
        if (accumulate) g = vaddq_f16(vldrhq_z_f16(oh + i, p), g);
        vstrhq_p_f16(oh + i, g, p);
    }
}
#endif
