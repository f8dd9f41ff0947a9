/* The QAS rule of tt_update_rules.h on four int8 weights in Helium lanes, for the _mve
 * update kernels (fully_connected_update_s8_mve.c, depthwise_conv2d_update_s8_mve.c): the
 * reference's floats and bytes for stochastic and nearest rounding, where the caller has
 * checked that no float can be subnormal (Helium flushes them; the kernels' comments have
 * the ranges). Header only; empty without __ARM_FEATURE_MVE.
 *
 * - tt_div_mve: a / s correctly rounded, without a vector division (Helium has none): from
 *   y = 1 / s (the scalar VDIV, correctly rounded), q = a * y, then twice r = a - s * q
 *   (VFMS), q = q + r * y (VFMA). After the first correction q is within one ulp of a / s;
 *   with y the correctly rounded reciprocal, Markstein's theorem makes the second one the
 *   correctly rounded quotient (the scalar VDIV's bits; checked on 2e8 random and
 *   near-midpoint pairs too). Valid while a, s, y, the quotient and each r are 0 or normal.
 *   A zero a gives +0 here where a / s keeps a's sign: callers for which the sign can
 *   reach a stored value select a's lanes (tt_div_mve_signed).
 * - tt_qas_round4_mve: the rounding of tt_update_fast.h (|step| < 2^20): m = q - floor(step),
 *   down by one if frac > u (stochastic, u the element's draw) or frac > 1/2, or = 1/2 with
 *   m < 1 (nearest), clamped to [-127, 127].
 * - tt_rng_ctr4: the counters of elements e0 .. e0+3 (draw e: hash(state + (e + 1) gamma)).
 * - tt_outside_mve: the lanes of v that are nonzero with a magnitude outside [2^lo, 2^hi)
 *   (subnormals, infinities and NaN included) as nonzero lanes, by saturating integer
 *   arithmetic on the bit patterns (no predicates: moving them between the VPR and core
 *   registers costs more). */
#ifndef TT_UPDATE_MVE_H
#define TT_UPDATE_MVE_H

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#include <stdint.h>
#include "tt_update_rules.h"

static inline float32x4_t tt_div_mve(float32x4_t a, float32x4_t s, float32x4_t y)
{
    float32x4_t q = vmulq_f32(a, y);
    q = vfmaq_f32(q, vfmsq_f32(a, q, s), y);
    return vfmaq_f32(q, vfmsq_f32(a, q, s), y);
}

static inline float32x4_t tt_div_mve_signed(float32x4_t a, float32x4_t s, float32x4_t y)
{
    return vpselq_f32(a, tt_div_mve(a, s, y), vcmpeqq_n_f32(a, 0.0f));
}

static inline uint32x4_t tt_outside_mve(float32x4_t v, int32_t lo, int32_t hi)
{
    const uint32x4_t mag = vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x7FFFFFFFu));
    const uint32x4_t above = vqsubq_n_u32(mag, ((uint32_t)(127 + hi) << 23) - 1u);    /* mag >= 2^hi */
    const uint32x4_t below = vqsubq_u32(vdupq_n_u32((uint32_t)(127 + lo) << 23), mag);  /* mag < 2^lo */
    return vorrq_u32(above, vminq_u32(below, mag));                                     /* ... and not 0 */
}

/* Nonzero lanes where |step| >= 2^20 (or NaN). */
static inline uint32x4_t tt_step_large_mve(float32x4_t step)
{
    return vqsubq_n_u32(vandq_u32(vreinterpretq_u32_f32(step), vdupq_n_u32(0x7FFFFFFFu)), 0x497FFFFFu);
}

static inline uint32x4_t tt_rng_ctr4(uint32_t state, int32_t e0)
{
    return vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), TT_RNG_GAMMA), state + ((uint32_t)e0 + 1u) * TT_RNG_GAMMA);
}

static inline __attribute__((always_inline)) int32x4_t tt_qas_round4_mve(float32x4_t step, int32x4_t q, uint32x4_t ctr,
                                                                         const int STOCH)
{
    const float32x4_t fl = vrndmq_f32(step);            /* floorf(step), exact */
    const float32x4_t frac = vsubq_f32(step, fl);
    int32x4_t m = vsubq_s32(q, vcvtq_s32_f32(fl));
    mve_pred16_t down;
    if (STOCH) {
        uint32x4_t h = veorq_u32(ctr, vshrq_n_u32(ctr, 16));
        h = vmulq_n_u32(h, 0x7FEB352Du);
        h = veorq_u32(h, vshrq_n_u32(h, 15));
        h = vmulq_n_u32(h, 0x846CA68Bu);
        h = veorq_u32(h, vshrq_n_u32(h, 16));
        down = vcmpgtq_f32(frac, vcvtq_n_f32_u32(vshrq_n_u32(h, 8), 24));   /* (h >> 8) * 2^-24, exact */
    } else {
        down = vcmpgtq_n_f32(frac, 0.5f) | (vcmpeqq_n_f32(frac, 0.5f) & vcmpltq_n_s32(m, 1));
    }
    m = vsubq_m_n_s32(m, m, 1, down);
    return vmaxq_s32(vminq_s32(m, vdupq_n_s32(TT_QAS_S8_MAX)), vdupq_n_s32(TT_QAS_S8_MIN));
}

#endif
#endif
