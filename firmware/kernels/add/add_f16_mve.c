/* Half-precision add for Helium (MVE, Cortex-M55): 8 halves per vaddq_f16, a predicated tail.
 * One rounding of the exact sum, as the portable tt_add_f16 / tt_add_grad_f16 (add_f16.c:
 * the same bits, so tinytrain/ops/f16.py needs no model of its own). The activation selects
 * (0 > v -> 0, v > 6 -> 6) as tt_act_f16 does: a -0 and a NaN stay.
 * Empty where __ARM_FEATURE_MVE is not defined. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

void tt_add_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y)
{
    const float16_t *ah = (const float16_t *)a, *bh = (const float16_t *)b;
    float16_t *yh = (float16_t *)y;
    const float16x8_t zero = vdupq_n_f16(0.0f), six = vdupq_n_f16(6.0f);
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        float16x8_t v = vaddq_x_f16(vldrhq_z_f16(ah + i, p), vldrhq_z_f16(bh + i, p), p);
        if (act != 0) {
            v = vpselq_f16(zero, v, vcmpgtq_f16(zero, v));      /* 0 > v: MVE's v < 0 is true for a NaN */
            if (act == 2) v = vpselq_f16(six, v, vcmpgtq_f16(v, six));
        }
        vstrhq_p_f16(yh + i, v, p);
    }
}

void tt_add_grad_f16_mve(tt_f16 *dst, const tt_f16 *src, int32_t n)
{
    float16_t *dh = (float16_t *)dst;
    const float16_t *sh = (const float16_t *)src;
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        vstrhq_p_f16(dh + i, vaddq_x_f16(vldrhq_z_f16(dh + i, p), vldrhq_z_f16(sh + i, p), p), p);
    }
}
#endif
