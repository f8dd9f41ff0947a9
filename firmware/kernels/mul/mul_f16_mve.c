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
 * half(old + half(gy * o)), mul_backward_f16.c). The gradient of an operand that broadcasts
 * along the output's pixels but has its channels (a per-channel factor, a (1,1,1,C) gate):
 * the portable kernel's float32 sums in float32 lanes over the channels, the pixels in the
 * same row-major order (tt_mul_grad_bcast_f16_mve, below). Empty where __ARM_FEATURE_MVE is
 * not defined. */
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

/* ---- the gradient of a broadcast operand with its channels, in float32 lanes -------------
 * The portable tt_mul_grad_bcast_f16 sums, per element of x, gy * o in float32 from 0 over
 * the pixels that read it (row-major), and rounds once. Here 4 channels at a time in float32
 * lanes, the same terms in the same order: the same sums, since every value is exact or
 * rounded as the scalar float is. Halves are widened without VCVTB/VCVTT (wrong in QEMU 7.2)
 * and without float32 subnormals (MVE float32 flushes them): a half is its integer
 * significand (vcvtq_f32_s32, exact) times a power of two >= 2^-24, so every widened value,
 * product (>= 2^-48) and sum (a multiple of 2^-48) is zero or a normal float32. Inf and NaN
 * operands go to the portable kernel (checked before anything is written), as do operands
 * that broadcast along the channels (their sums run across lanes). The rounding of each sum
 * to half is the portable one (tt_f2h, scalar). */
static inline float32x4_t widen_exact(uint32x4_t h)
{
    const uint32x4_t e = vandq_u32(vshrq_n_u32(h, 10), vdupq_n_u32(0x1Fu));
    const uint32x4_t m = vandq_u32(h, vdupq_n_u32(0x3FFu));
    const uint32x4_t one = vdupq_n_u32(1u);       /* (no predicates: arm-none-eabi-gcc 12 crashes on them here) */
    const uint32x4_t sig = vorrq_u32(m, vshlq_n_u32(vminq_u32(e, one), 10));        /* the implicit bit */
    const uint32x4_t pow2 = vshlq_n_u32(vaddq_u32(vmaxq_u32(e, one), vdupq_n_u32(102u)), 23);   /* 2^(e' - 25) */
    const float32x4_t v = vmulq_f32(vcvtq_f32_s32(vreinterpretq_s32_u32(sig)), vreinterpretq_f32_u32(pow2));
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(v), vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x8000u)), 16)));
}

static int any_inf_nan(const uint16_t *h, int32_t n)     /* exponent field all ones */
{
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const uint16x8_t e = vandq_u16(vldrhq_z_u16(h + i, p), vdupq_n_u16(0x7C00u));
        if (vcmpeqq_u16(e, vdupq_n_u16(0x7C00u)) & p) return 1;
    }
    return 0;
}

void tt_mul_grad_bcast_f16_mve(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y, int32_t accumulate,
                               tt_f16 *grad_x)
{
    const int32_t kh = bc->a_sh ? bc->h : 1, kw = bc->a_sw ? bc->w : 1;
    const int32_t rh = bc->a_sh ? 1 : bc->h, rw = bc->a_sw ? 1 : bc->w;
    const int32_t other_n = (bc->h - 1) * bc->b_sh + (bc->w - 1) * bc->b_sw + (bc->c - 1) * bc->b_sc + 1;
    int32_t i, j, k, ri, rj, l;
    if (bc->a_sc != 1 || any_inf_nan(grad_y, bc->h * bc->w * bc->c) || any_inf_nan(other, other_n)) {
        tt_mul_grad_bcast_f16(bc, other, grad_y, accumulate, grad_x);
        return;
    }
    for (i = 0; i < kh; ++i) {
        for (j = 0; j < kw; ++j) {
            tt_f16 *gx = grad_x + i * bc->a_sh + j * bc->a_sw;
            for (k = 0; k < bc->c; k += 4) {
                const mve_pred16_t p = vctp32q((uint32_t)(bc->c - k));
                float32x4_t sum = vdupq_n_f32(0.0f);
                float lanes[4];
                for (ri = 0; ri < rh; ++ri) {
                    const int32_t y = bc->a_sh ? i : ri;
                    for (rj = 0; rj < rw; ++rj) {
                        const int32_t x = bc->a_sw ? j : rj;
                        const uint16_t *o = other + y * bc->b_sh + x * bc->b_sw;
                        const float32x4_t g = widen_exact(vldrhq_z_u32(grad_y + (y * bc->w + x) * bc->c + k, p));
                        const float32x4_t v = widen_exact(bc->b_sc ? vldrhq_z_u32(o + k, p) : vdupq_n_u32(o[0]));
                        sum = vaddq_f32(sum, vmulq_f32(g, v));
                    }
                }
                vst1q_f32(lanes, sum);
                for (l = 0; l < 4 && k + l < bc->c; ++l)
                    gx[k + l] = tt_f2h(accumulate ? tt_h2f(gx[k + l]) + lanes[l] : lanes[l]);
            }
        }
    }
}
#endif
