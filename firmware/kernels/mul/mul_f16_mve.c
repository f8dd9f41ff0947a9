/* Half-precision mul for Helium (MVE, Cortex-M55): 8 halves per vmulq_f16, a predicated tail.
 * vmulq_f16 rounds the exact product once, which is what the portable kernels store (mul_f16.c:
 * the product of two halves is exact in float): the same bits, so tinytrain/ops/f16.py needs no
 * model of its own. The activation: the portable kernel applies it to the float product before
 * the rounding, so a negative product that underflows to -0 in half becomes +0 there, while a
 * product that is exactly -0 (a zero operand) stays -0. Here: 0 where 0 > v, or where v is a
 * zero of the rounding (v == 0 with both operands non-zero: +0 either way), 6 where v > 6
 * (written with `gt`: MVE's `lt` is true for a NaN, C's `<` is not: a NaN stays).
 * Broadcast: operands that walk as the output or are scalars run as one flat run, otherwise
 * per output pixel with the channels in the lanes (tt_bcast_mve.h). The gradient of an operand
 * of the output's shape: vmulq_f16, then vaddq_f16 into the old gradient (the portable
 * half(old + half(gy * o)), mul_backward_f16.c). Empty where __ARM_FEATURE_MVE is not defined. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_bcast_mve.h"

#define TT_INLINE static inline __attribute__((always_inline))

/* v = a * b rounded to half, then relu / relu6 as tt_act_f16 on the float product */
TT_INLINE float16x8_t act_f16(float16x8_t v, float16x8_t a, float16x8_t b, int32_t act)
{
    const float16x8_t zero = vdupq_n_f16(0.0f), six = vdupq_n_f16(6.0f);
    mve_pred16_t neg = vcmpgtq_f16(zero, v);
    const mve_pred16_t zeros = vcmpeqq_f16(v, zero);
    if (zeros) neg |= zeros & vcmpneq_f16(a, zero) & vcmpneq_f16(b, zero);     /* rare: underflow */
    v = vpselq_f16(zero, v, neg);
    if (act == 2) v = vpselq_f16(six, v, vcmpgtq_f16(v, six));
    return v;
}

/* One run; the flags are constants where it is inlined (no test per vector for them). */
TT_INLINE void mul_loop(const float16_t *a, int32_t va, const float16_t *b, int32_t vb, int32_t n, int32_t act,
                        float16_t *y)
{
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const float16x8_t x = tt_bcast_load_f16(a, va, i, p), z = tt_bcast_load_f16(b, vb, i, p);
        float16x8_t v = vmulq_x_f16(x, z, p);
        if (act != 0) v = act_f16(v, x, z, act);
        vstrhq_p_f16(y + i, v, p);
    }
}

static void mul_run(const float16_t *a, int32_t va, const float16_t *b, int32_t vb, int32_t n, int32_t act,
                    float16_t *y)
{
    if (act == 0) {
        if (va && vb) mul_loop(a, 1, b, 1, n, 0, y);
        else if (va) mul_loop(a, 1, b, 0, n, 0, y);
        else mul_loop(a, 0, b, vb, n, 0, y);
    } else {
        if (va && vb) mul_loop(a, 1, b, 1, n, act, y);
        else if (va) mul_loop(a, 1, b, 0, n, act, y);
        else mul_loop(a, 0, b, vb, n, act, y);
    }
}

void tt_mul_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y)
{
    mul_run((const float16_t *)a, 1, (const float16_t *)b, 1, n, act, (float16_t *)y);
}

void tt_mul_bcast_f16_mve(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y)
{
    const float16_t *ah = (const float16_t *)a, *bh = (const float16_t *)b;
    float16_t *yh = (float16_t *)y;
    int32_t va, vb, i, j;
    if (tt_bcast_flat(bc, &va, &vb)) {
        mul_run(ah, va, bh, vb, bc->h * bc->w * bc->c, act, yh);
        return;
    }
    for (i = 0; i < bc->h; ++i)
        for (j = 0; j < bc->w; ++j, yh += bc->c)
            mul_run(ah + i * bc->a_sh + j * bc->a_sw, bc->a_sc != 0, bh + i * bc->b_sh + j * bc->b_sw, bc->b_sc != 0,
                    bc->c, act, yh);
}

TT_INLINE void grad_loop(const float16_t *o, int32_t vo, const float16_t *gy, int32_t n, int32_t accumulate,
                         float16_t *gx)
{
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        float16x8_t g = vmulq_x_f16(vldrhq_z_f16(gy + i, p), tt_bcast_load_f16(o, vo, i, p), p);
        if (accumulate) g = vaddq_x_f16(vldrhq_z_f16(gx + i, p), g, p);
        vstrhq_p_f16(gx + i, g, p);
    }
}

static void grad_run(const float16_t *o, int32_t vo, const float16_t *gy, int32_t n, int32_t accumulate,
                     float16_t *gx)
{
    if (accumulate) {
        if (vo) grad_loop(o, 1, gy, n, 1, gx);
        else grad_loop(o, 0, gy, n, 1, gx);
    } else {
        if (vo) grad_loop(o, 1, gy, n, 0, gx);
        else grad_loop(o, 0, gy, n, 0, gx);
    }
}

void tt_mul_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y,
                               int32_t accumulate, tt_f16 *grad_x)
{
    const float16_t *oh = (const float16_t *)other, *gy = (const float16_t *)grad_y;
    float16_t *gx = (float16_t *)grad_x;
    const int32_t vo = tt_bcast_dense(bc, bc->b_sh, bc->b_sw, bc->b_sc);
    int32_t i, j;
    if (vo || tt_bcast_scalar(bc->b_sh, bc->b_sw, bc->b_sc)) {      /* x walks as the output: one run */
        grad_run(oh, vo, gy, bc->h * bc->w * bc->c, accumulate, gx);
        return;
    }
    for (i = 0; i < bc->h; ++i)
        for (j = 0; j < bc->w; ++j, gy += bc->c, gx += bc->c)
            grad_run(oh + i * bc->b_sh + j * bc->b_sw, bc->b_sc != 0, gy, bc->c, accumulate, gx);
}
#endif
