/* The element-wise update rules of tt_train_kernels.h (SGD and QAS with its four update
 * modes), shared by every update kernel (weights and biases) so that every path computes
 * the same floats. Header only: static inline functions, no state of its own.
 * tinytrain/training/qas.py is the numpy twin of every function here, bit for bit
 * (tests/test_update_modes.py). */
#ifndef TT_UPDATE_RULES_H
#define TT_UPDATE_RULES_H

#include <math.h>
#include <stdint.h>
#include "tt_train_kernels.h"

#define TT_QAS_S8_MIN (-127)
#define TT_QAS_S8_MAX 127
/* A trained int32 bias stays within +-2^30, where no int8 kernel's accumulator can overflow
 * (for layers of up to 32,896 weights per output; the compiler refuses larger ones): then
 * the reference kernels' saturating bias add (which their SIMD variants reproduce at any
 * bias) and LiteRT's plain add give the same bytes. Twin: tinytrain/training/qas.py
 * INT_RANGE["int32"], which explains the bound. */
#define TT_QAS_BIAS_MIN (-1073741824)
#define TT_QAS_BIAS_MAX 1073741824

/* The rules take the kernel's copy of the hyper-parameters (`const tt_hparams hp =
 * *u->hp;` once per call: the parameters a kernel writes may alias them, which would
 * otherwise reload them for every element) and the update `u`, whose arrays they index at
 * element e. */

/* SGD on element e of a float parameter w: returns the new value. */
static inline float tt_sgd_rule(float w, float grad, const tt_hparams *hp, const tt_update *u,
                                int32_t e)
{
    float g = grad + hp->weight_decay * w;
    if (u->momentum) {
        float *m = &u->momentum[e];
        *m = hp->momentum * *m + g;
        g = *m;
    }
    return w - hp->lr * g;
}

/* ---- the update PRNG (TT_UPDATE_STOCHASTIC) ----------------------------------------------
 * Counter-based: draw e (0-based) of an update that starts at state s is
 * hash(s + (e + 1) * GAMMA), and the update then advances the state by n * GAMMA for its n
 * elements. The state walks a Weyl sequence (GAMMA odd: period 2^32 draws) through a
 * 32-bit avalanche hash (Wellons' "lowbias32"), as SplitMix does; the draw of an element
 * does not depend on the order a kernel visits the elements in, and the host reproduces
 * any stretch of the stream in one vectorized numpy expression. */
#define TT_RNG_GAMMA 0x9E3779B9u

static inline uint32_t tt_rng_hash(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* Draw e of the current update as a float in [0, 1) on a grid of 2^-24 (exact). */
static inline float tt_rng_uniform(const tt_rng *r, int32_t e)
{
    return (float)(tt_rng_hash(r->state + ((uint32_t)e + 1u) * TT_RNG_GAMMA) >> 8) * 0x1p-24f;
}

/* After an update of n elements: every draw it could make is consumed. */
static inline void tt_update_advance(const tt_update *u, int32_t n)
{
    if (u->mode == TT_UPDATE_STOCHASTIC) {
        u->rng->state += (uint32_t)n * TT_RNG_GAMMA;
    }
}

/* ---- rounding an integer parameter after a step ------------------------------------------- */

/* Split a step into whole = floor(step) and frac = step - whole in [0, 1) (exact: the
 * fraction of a float is a float); |step| is first limited to 2^40, beyond which every
 * result saturates anyway. */
static inline void tt_step_split(float step, float *whole, float *frac)
{
    const float big = 1099511627776.0f;   /* 2^40 */
    if (step > big) step = big;
    if (step < -big) step = -big;
    *whole = floorf(step);
    *frac = step - *whole;
}

/* (int64_t)x for an integral float |x| <= 2^40, without a float -> int64 conversion: on the
 * Cortex-M that is libgcc's __aeabi_f2lz, which goes through soft double precision
 * (__aeabi_f2d, __aeabi_dmul, ~100 instructions). x = hi * 2^20 + lo with hi = floor(x /
 * 2^20) and lo in [0, 2^20): every step is exact (scaling by a power of two, floor of a
 * float, an integer difference below 2^24), and each part fits an int32 (VCVT). */
static inline int64_t tt_whole_to_s64(float x)
{
    const float hi = floorf(x * 0x1p-20f);
    const float lo = x - hi * 0x1p20f;
    return (int64_t)(int32_t)hi * 1048576 + (int32_t)lo;
}

static inline int64_t tt_sat_s64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* round_half_away(v - step) computed exactly (the difference is not rounded to a float
 * first), saturated to [lo, hi]. NaN step: v unchanged. */
static inline int64_t tt_round_exact_s64(int64_t v, float step, int64_t lo, int64_t hi)
{
    float whole, frac;
    int64_t m;
    if (step != step) return v;
    tt_step_split(step, &whole, &frac);
    m = v - tt_whole_to_s64(whole);       /* v - step = m - frac, frac in [0, 1) */
    if (frac > 0.5f || (frac == 0.5f && m < 1)) m -= 1;
    return tt_sat_s64(m, lo, hi);
}

static inline int32_t tt_qas_round_exact(int32_t q, float step, int32_t qmin, int32_t qmax)
{
    return (int32_t)tt_round_exact_s64(q, step, qmin, qmax);
}

/* Stochastic rounding of q - step: down to floor(q - step) with probability
 * frac(q - step), else up, decided by u in [0, 1); unbiased: E[result] = q - step. */
static inline int32_t tt_qas_round_stochastic(int32_t q, float step, float u, int32_t qmin, int32_t qmax)
{
    float whole, frac;
    int64_t m;
    if (step != step) return q;
    tt_step_split(step, &whole, &frac);
    m = (int64_t)q - tt_whole_to_s64(whole);  /* q - step = m - frac: m - 1 with probability frac */
    if (frac > u) m -= 1;
    return (int32_t)tt_sat_s64(m, qmin, qmax);
}

/* The compact residual: the parameter's value is q + r / 256 (r: int8, 8 bits of fraction),
 * kept as one fixed-point number v = 256 q + r in [256 qmin - 128, 256 qmax + 127].
 * v - 256 step is rounded exactly to the nearest 1/256 (half away from zero), then split
 * again: q = floor((v + 128) / 256) (the nearest integer, halves up), r = v - 256 q in
 * [-128, 127]. Steps below 1/512 of a step are lost, larger ones accumulate. */
static inline int64_t tt_floor_div256(int64_t v)
{
    return v >= 0 ? v / 256 : -((-v + 255) / 256);
}

static inline int32_t tt_qas_residual_step(int32_t q, int8_t *r, float step, int32_t qmin, int32_t qmax)
{
    const int64_t lo = (int64_t)qmin * 256 - 128, hi = (int64_t)qmax * 256 + 127;
    int64_t v = (int64_t)q * 256 + *r, qn;
    if (step != step) return q;
    v = tt_round_exact_s64(v, step * 256.0f, lo, hi);   /* * 256: exact, or +-inf -> 2^40 */
    qn = tt_floor_div256(v + 128);
    *r = (int8_t)(v - qn * 256);
    return (int32_t)qn;
}

/* The fp32 shadow: shadow = clamp(shadow - step, qmin, qmax); q = round_half_away(shadow). */
static inline int32_t tt_qas_shadow_step(int32_t q, float *shadow, float step, int32_t qmin, int32_t qmax)
{
    float v;
    if (step != step) return q;
    v = *shadow - step;
    if (v < (float)qmin) v = (float)qmin;
    if (v > (float)qmax) v = (float)qmax;
    *shadow = v;
    v = roundf(v);
    if (v >= (float)qmax) return qmax;    /* (float)INT32_MAX rounds up to 2^31 */
    if (v <= (float)qmin) return qmin;
    return (int32_t)v;
}

/* The step of one QAS update before its rounding, on an element whose value (the one weight
 * decay reads) is v: lr * (grad_real / s + wd * v), through the momentum m (NULL: none).
 * Scalar arguments, so that a kernel keeps them in registers across its loop. */
static inline float tt_qas_step_of(float v, float grad_real, float s, float lr, float mu, float wd, float *m)
{
    float g = grad_real / s;
    g = g + wd * v;
    if (m) {
        *m = mu * *m + g;
        g = *m;
    }
    return lr * g;
}

/* The value weight decay reads: the shadow, q + r / 256, or q. */
static inline float tt_qas_value(int32_t q, const tt_update *u, int32_t e)
{
    if (u->mode == TT_UPDATE_SHADOW) return u->shadow[e];
    if (u->mode == TT_UPDATE_RESIDUAL) return (float)q + (float)u->residual[e] * 0x1p-8f;
    return (float)q;
}

/* One QAS step on element e of a quantized parameter q with scale s (rules at the top of
 * tt_train_kernels.h); u->mode TT_UPDATE_FLOAT or NEAREST rounds to nearest. Returns the
 * new q. The value weight decay reads: the shadow, q + r / 256, or q. */
static inline int32_t tt_qas_rule(int32_t q, float grad_real, float s, const tt_hparams *hp,
                                  const tt_update *u, int32_t e, int32_t qmin, int32_t qmax)
{
    const float step = tt_qas_step_of(tt_qas_value(q, u, e), grad_real, s, hp->lr, hp->momentum, hp->weight_decay,
                                      u->momentum ? &u->momentum[e] : 0);
    switch (u->mode) {
    case TT_UPDATE_SHADOW: return tt_qas_shadow_step(q, &u->shadow[e], step, qmin, qmax);
    case TT_UPDATE_RESIDUAL: return tt_qas_residual_step(q, &u->residual[e], step, qmin, qmax);
    case TT_UPDATE_STOCHASTIC:
        return tt_qas_round_stochastic(q, step, tt_rng_uniform(u->rng, e), qmin, qmax);
    default: return tt_qas_round_exact(q, step, qmin, qmax);
    }
}

#endif
