/* Helium variants (MVE, Cortex-M55) of the half-precision masks of train_f16.c: the same
 * bits (half comparisons are exact, and the Helium half compares keep subnormals: FPSCR.FZ16
 * is 0), 8 elements a vector, one mask byte each. A mask byte is built from a compare
 * predicate by selecting 1, 2, 4 .. 128 in the true lanes and summing the lanes (VADDV).
 * Empty where __ARM_FEATURE_MVE & 2 is not set (train_f16.c's kernels run instead). */
#include "tt_train_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static const uint16_t bit_of_lane[8] = { 1, 2, 4, 8, 16, 32, 64, 128 };

static inline uint8_t byte_of(mve_pred16_t p)
{
    return (uint8_t)vaddvq_u16(vpselq_u16(vld1q_u16(bit_of_lane), vdupq_n_u16(0), p));
}

void tt_mask_relu_f16_mve(const tt_f16 *y, int32_t n, uint8_t *mask)
{
    const float16_t *v = (const float16_t *)y;
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t t = vctp16q((uint32_t)(n - i));
        mask[i >> 3] = byte_of(vcmpgtq_m_n_f16(vldrhq_z_f16(v + i, t), (float16_t)0.0f, t));
    }
}

void tt_mask_relu6_f16_mve(const tt_f16 *y, int32_t n, uint8_t *mask)
{
    const float16_t *v = (const float16_t *)y;
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t t = vctp16q((uint32_t)(n - i));
        const float16x8_t x = vldrhq_z_f16(v + i, t);
        mask[i >> 3] = byte_of(vcmpltq_m_n_f16(x, (float16_t)6.0f, vcmpgtq_m_n_f16(x, (float16_t)0.0f, t)));
    }
}

/* grad[i] = 0 where bit i is clear; a byte of all ones is skipped. */
void tt_mask_apply_f16_mve(tt_f16 *grad, int32_t n, const uint8_t *mask)
{
    const uint16x8_t bits = vld1q_u16(bit_of_lane);
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const uint32_t b = mask[i >> 3];
        mve_pred16_t clear;
        if (b == 0xFFu && n - i >= 8) continue;
        clear = vcmpeqq_n_u16(vandq_u16(vdupq_n_u16((uint16_t)b), bits), 0) & vctp16q((uint32_t)(n - i));
        vstrhq_p_u16(grad + i, vdupq_n_u16(0), clear);
    }
}
#endif
