/* The vector form of tt_sgd_rule_f16 for the Helium half-precision update kernels, in its
 * plain case (fp16 weights: no fp32 master copy, no momentum, no weight decay; the learning
 * rate and the loss scale in ordinary ranges: tt_sgd_plain_ok): the same operations, each
 * rounded once, so the same bits as the scalar rule. Header only; the callers include it
 * inside their __ARM_FEATURE_MVE block, after <arm_mve.h>.
 *
 * Two QEMU 7.2 facts shape it: MVE's half <-> float32 conversions (VCVTB/VCVTT) give wrong
 * values there, and MVE float32 arithmetic runs with flush-to-zero. So a normal half h is
 * widened as (h & 0x7FFF) << 13 read as a float32 (a normal float32, 2^-112 times its value)
 * times 2^112, and narrowed the other way with round-to-nearest-even by hand; operands that
 * are subnormal, inf or NaN, and results that are not zero or a normal half, are left to the
 * scalar rule by the caller (tt_odd_halves_f16, tt_sgd_plain8_f16's return). In the ranges
 * tt_sgd_plain_ok asks for, no float32 value of the rule can be subnormal. */
#ifndef TT_UPDATE_F16_MVE_H
#define TT_UPDATE_F16_MVE_H

#include "tt_update_f16.h"
/* Helium float only (an M4 build, or a header-by-header include as tests/test_compile.py
 * does, gets nothing). */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static inline int tt_sgd_plain_ok(const tt_hparams *hp, const tt_update *u)
{
    const float inv = 1.0f / u->ls->scale;
    return !u->momentum && !u->shadow && hp->weight_decay == 0.0f && inv >= 0x1p-20f && inv <= 0x1p8f
           && hp->lr >= 0x1p-40f && hp->lr <= 0x1p8f;
}

/* Any lane of a or b (halves without their sign) subnormal, inf or NaN: inf / NaN is
 * max >= 0x7C00; subnormal is a - 1 < 0x3FF (a zero wraps to 0xFFFF). */
static inline int tt_odd_halves_f16(uint16x8_t a, uint16x8_t b)
{
    return vcmpcsq_n_u16(vmaxq_u16(a, b), 0x7C00u) != 0
           || vcmpcsq_n_u16(vminq_u16(vsubq_n_u16(a, 1u), vsubq_n_u16(b, 1u)), 0x3FFu) != 0xFFFF;
}

/* s: a half sign-extended to 32 bits; its value times 2^-112 as a float32 (normal or zero). */
static inline float32x4_t tt_half_raw_f16(int32x4_t s)
{
    const uint32x4_t u = vreinterpretq_u32_s32(s);
    return vreinterpretq_f32_u32(vorrq_u32(vandq_u32(u, vdupq_n_u32(0x80000000u)),
                                           vandq_u32(vshlq_n_u32(u, 13), vdupq_n_u32(0x0FFFE000u))));
}

/* v (zero or in a normal half's range) rounded to half, nearest even, in the low 16 bits. */
static inline uint32x4_t tt_raw_half_f16(float32x4_t v)
{
    const uint32x4_t b = vreinterpretq_u32_f32(vmulq_n_f32(v, 0x1p-112f));
    const uint32x4_t r = vshrq_n_u32(vaddq_u32(b, vaddq_u32(vdupq_n_u32(0x0FFFu), vandq_u32(vshrq_n_u32(b, 13),
                                                                                     vdupq_n_u32(1u)))), 13);
    return vorrq_u32(r, vandq_u32(vshrq_n_u32(b, 16), vdupq_n_u32(0x8000u)));
}

/* w[0..8) = w - lr * g for the weights w16 (normal or zero halves, checked by the caller) and
 * the float32 gradients already divided by the loss scale (gb: the even lanes, gt: the odd
 * ones); 0, storing nothing, when a result is not zero or a normal half (|v| >= 65504 or
 * below 2^-14). */
static inline int tt_sgd_plain8_f16(tt_f16 *w, uint16x8_t w16, float32x4_t gb, float32x4_t gt, float lr)
{
    const float32x4_t wb = vsubq_f32(vmulq_n_f32(tt_half_raw_f16(vmovlbq_s16(vreinterpretq_s16_u16(w16))), 0x1p112f),
                                     vmulq_n_f32(gb, lr));
    const float32x4_t wt = vsubq_f32(vmulq_n_f32(tt_half_raw_f16(vmovltq_s16(vreinterpretq_s16_u16(w16))), 0x1p112f),
                                     vmulq_n_f32(gt, lr));
    const uint32x4_t ab = vandq_u32(vreinterpretq_u32_f32(wb), vdupq_n_u32(0x7FFFFFFFu));
    const uint32x4_t at = vandq_u32(vreinterpretq_u32_f32(wt), vdupq_n_u32(0x7FFFFFFFu));
    uint16x8_t r = vdupq_n_u16(0);
    if (vcmpcsq_n_u32(vmaxq_u32(ab, at), 0x477FE000u) != 0
        || vcmpcsq_n_u32(vminq_u32(vsubq_n_u32(ab, 1u), vsubq_n_u32(at, 1u)), 0x387FFFFFu) != 0xFFFF)
        return 0;
    r = vmovnbq_u32(r, tt_raw_half_f16(wb));
    r = vmovntq_u32(r, tt_raw_half_f16(wt));
    vst1q_u16((uint16_t *)w, r);
    return 1;
}

#endif   /* __ARM_FEATURE_MVE & 2 */

#endif
