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
 * - tt_qas_run_mve: the rule over a run of weights with the checks that allow vectors (below).
 * - tt_outside_mve: the lanes of v that are nonzero with a magnitude outside [2^lo, 2^hi)
 *   (subnormals, infinities and NaN included) as nonzero lanes, by saturating integer
 *   arithmetic on the bit patterns (no predicates: moving them between the VPR and core
 *   registers costs more). */
#ifndef TT_UPDATE_MVE_H
#define TT_UPDATE_MVE_H

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#include <stdint.h>
#include <string.h>
#include "tt_update_rules.h"
#include "tt_update_rows.h"

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

/* ---- the rule over a run of weights ------------------------------------------------------
 * Element l (< n) of the run: weight w[widx ? widx[l] : l], gradient grad[l] (real units),
 * scale sc[l] with yc[l] = 1 / sc[l] (sc NULL: s and y for every element), update element
 * e0 + l. Its vectors keep every float normal by these checks (the argument: Helium flushes
 * subnormals): the call (tt_qas_run_mve_ok) stochastic / nearest rounding, lr and the
 * momentum factor 0 or in [2^-20, 2^20), wd 0 or in [2^-40, 2^40); each scale in [2^-40,
 * 2^40) (tt_qas_scale_ok_mve); per four weights each gradient a 0 or |a| in [2^-70, 2^48)
 * with |a| / s >= 2^-70 (then the quotient, each residual r, a multiple of 2^(e_a - 47), and
 * g + wd * q, a multiple of 2^-94, are 0 or normal), with momentum the old value 0 or in
 * [2^-60, 2^60) (mu * m + g: a multiple of 2^-117) and the new one 0 or in [2^-100, 2^100)
 * (lr * m normal), and |step| < 2^20 (tt_update_fast.h's int32 rounding). Four weights
 * failing a check, and the last 1-3, take tt_qas_update_run_s8 (the scalar rule). */
/* a struct tag, not a typedef: the typedef structs of these headers are the parameter
 * structs whose sizes tinytrain.cgen.kernels reads */
struct tt_qas_run {
    int8_t *w;
    const int32_t *widx;
    const float *grad, *sc, *yc;
    float s, y;
    int32_t n, e0;
    const tt_hparams *hp;
    const tt_update *u;
};

/* 1 if f is 0 or its magnitude lies in [2^lo, 2^hi) (subnormals, infinities and NaN fail). */
static inline int32_t tt_zero_or_within(float f, int32_t lo, int32_t hi)
{
    uint32_t b;
    int32_t e;
    memcpy(&b, &f, 4);
    b &= 0x7FFFFFFFu;
    e = (int32_t)(b >> 23) - 127;
    return b == 0u || (e >= lo && e < hi && e > -127);
}

/* lr and the momentum factor 0 or in [2^-20, 2^20), wd 0 or in [2^-40, 2^40) */
static inline int32_t tt_qas_hparams_ok_mve(const tt_hparams *hp)
{
    return tt_zero_or_within(hp->lr, -20, 20) && tt_zero_or_within(hp->momentum, -20, 20) &&
           tt_zero_or_within(hp->weight_decay, -40, 40);
}

static inline int32_t tt_qas_run_mve_ok(const tt_update *u)
{
    return u->mode != TT_UPDATE_SHADOW && u->mode != TT_UPDATE_RESIDUAL && tt_qas_hparams_ok_mve(u->hp);
}

static inline int32_t tt_qas_scale_ok_mve(float s)
{
    return s > 0.0f && tt_zero_or_within(s, -40, 40);
}

static inline void tt_qas_run_scalar(const struct tt_qas_run *r, int32_t l)
{
    tt_qas_update_run_s8(r->w + (r->widx ? r->widx[l] : l), NULL, 0, r->grad + l, 1, r->sc ? r->sc[l] : r->s, r->hp,
                         r->u, r->e0 + l, 1);
}

/* STOCH: stochastic rounding, else nearest. Forced inline into one function per mode. */
static inline __attribute__((always_inline)) void tt_qas_run_mve(const struct tt_qas_run *r, const int STOCH)
{
    const tt_hparams hp = *r->hp;
    const int32_t n4 = r->n & ~3;
    float *const mom = r->u->momentum;
    int32_t l;
    for (l = 0; l < n4; l += 4) {
        const int32_t e = r->e0 + l;
        const uint32x4_t idx = r->widx ? vld1q_u32((const uint32_t *)(const void *)(r->widx + l)) : vdupq_n_u32(0u);
        int8_t *const wl = r->widx ? r->w : r->w + l;
        const int32x4_t qv = r->widx ? vldrbq_gather_offset_s32(wl, idx) : vldrbq_s32(wl);
        const float32x4_t a = vld1q_f32(r->grad + l);
        const float32x4_t sv = r->sc ? vld1q_f32(r->sc + l) : vdupq_n_f32(r->s);
        const float32x4_t yv = r->sc ? vld1q_f32(r->yc + l) : vdupq_n_f32(r->y);
        const uint32x4_t mag = vandq_u32(vreinterpretq_u32_f32(a), vdupq_n_u32(0x7FFFFFFFu));
        /* e_a - e_s < -69 on a nonzero lane: the quotient could come near the subnormals */
        const int32x4_t ediff = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(mag, 23)),
                                          vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_f32(sv), 23)));
        uint32x4_t bad = vorrq_u32(tt_outside_mve(a, -70, 48),
                                   vminq_u32(vshrq_n_u32(vreinterpretq_u32_s32(vaddq_n_s32(ediff, 69)), 31), mag));
        float32x4_t g = tt_div_mve_signed(a, sv, yv), mn = vdupq_n_f32(0.0f), step;
        g = vaddq_f32(g, vmulq_n_f32(vcvtq_f32_s32(qv), hp.weight_decay));
        if (mom) {
            const float32x4_t mo = vld1q_f32(mom + e);
            mn = vaddq_f32(vmulq_n_f32(mo, hp.momentum), g);
            bad = vorrq_u32(bad, vorrq_u32(tt_outside_mve(mo, -60, 60), tt_outside_mve(mn, -100, 100)));
            g = mn;
        }
        step = vmulq_n_f32(g, hp.lr);
        bad = vorrq_u32(bad, tt_step_large_mve(step));
        if (vmaxvq_u32(0u, bad)) {
            tt_qas_run_scalar(r, l);
            tt_qas_run_scalar(r, l + 1);
            tt_qas_run_scalar(r, l + 2);
            tt_qas_run_scalar(r, l + 3);
            continue;
        }
        {
            const int32x4_t m = tt_qas_round4_mve(step, qv, tt_rng_ctr4(STOCH ? r->u->rng->state : 0u, e), STOCH);
            if (mom) vst1q_f32(mom + e, mn);
            if (r->widx) vstrbq_scatter_offset_s32(wl, idx, m);
            else vstrbq_s32(wl, m);
        }
    }
    for (; l < r->n; ++l) tt_qas_run_scalar(r, l);
}

#endif
#endif
