/* The roundings of the QAS update modes (tt_update_rules.h), for the optimised update
 * kernels: the same results bit for bit, without libm's floorf / roundf (library calls on
 * the Cortex-M4, whose FPU has no VRINT) and without 64-bit arithmetic, wherever the
 * step is small enough for int32 (|step| < 2^20, far beyond what moves an int8 weight);
 * elsewhere (huge steps, NaN) they call the reference rounding itself. For parameters
 * whose range [qmin, qmax] lies within +-2^15 (int8 weights).
 *
 * Why they agree: the reference splits the step as whole = floorf(step), frac = step -
 * whole; here whole is found through a conversion to int32 (truncation, exact below 2^31)
 * corrected by one when it exceeds the step, which is floorf(step) exactly, and frac is
 * then the same float subtraction of the same operands. The integer arithmetic that
 * follows is the reference's, in int32 where it cannot overflow. Header only. */
#ifndef TT_UPDATE_FAST_H
#define TT_UPDATE_FAST_H

#include <stdint.h>
#include "tt_update_rules.h"

#define TT_FAST_STEP_LIMIT 0x1p20f

/* 1 if |step| < 2^20 (0 for NaN). */
static inline int32_t tt_step_is_small(float step)
{
    return step > -TT_FAST_STEP_LIMIT && step < TT_FAST_STEP_LIMIT;
}

/* floorf(step) as an int32, and frac = step - floorf(step) as tt_step_split computes it;
 * |step| < 2^20. */
static inline int32_t tt_step_split_small(float step, float *frac)
{
    int32_t w = (int32_t)step;              /* toward zero */
    float fw = (float)w;
    if (fw > step) {
        w -= 1;
        fw -= 1.0f;                         /* exact: an integer below 2^20 */
    }
    *frac = step - fw;
    return w;
}

static inline int32_t tt_clamp_q(int32_t m, int32_t qmin, int32_t qmax)
{
    return m < qmin ? qmin : (m > qmax ? qmax : m);
}

/* tt_qas_round_exact */
static inline int32_t tt_qas_round_exact_fast(int32_t q, float step, int32_t qmin, int32_t qmax)
{
    float frac;
    int32_t m;
    if (!tt_step_is_small(step)) return tt_qas_round_exact(q, step, qmin, qmax);
    m = q - tt_step_split_small(step, &frac);
    if (frac > 0.5f || (frac == 0.5f && m < 1)) m -= 1;
    return tt_clamp_q(m, qmin, qmax);
}

/* tt_qas_round_stochastic */
static inline int32_t tt_qas_round_stochastic_fast(int32_t q, float step, float u, int32_t qmin, int32_t qmax)
{
    float frac;
    int32_t m;
    if (!tt_step_is_small(step)) return tt_qas_round_stochastic(q, step, u, qmin, qmax);
    m = q - tt_step_split_small(step, &frac);
    if (frac > u) m -= 1;
    return tt_clamp_q(m, qmin, qmax);
}

/* tt_qas_residual_step: v = 256 q + r is below 2^23 in magnitude, v - 256 step rounded as
 * tt_round_exact_s64 does, floor((v + 128) / 256) by an arithmetic shift. */
static inline int32_t tt_qas_residual_step_fast(int32_t q, int8_t *r, float step, int32_t qmin, int32_t qmax)
{
    const float s256 = step * 256.0f;
    const int32_t lo = qmin * 256 - 128, hi = qmax * 256 + 127;
    float frac;
    int32_t v, qn;
    if (!tt_step_is_small(s256)) return tt_qas_residual_step(q, r, step, qmin, qmax);
    v = q * 256 + *r - tt_step_split_small(s256, &frac);
    if (frac > 0.5f || (frac == 0.5f && v < 1)) v -= 1;
    v = tt_clamp_q(v, lo, hi);
    qn = (v + 128) >= 0 ? (v + 128) / 256 : -((-(v + 128) + 255) / 256);
    *r = (int8_t)(v - qn * 256);
    return qn;
}

/* tt_qas_shadow_step: the clamped shadow is within [qmin, qmax], so roundf (half away from
 * zero) is a truncation plus a correction by the exact remainder. */
static inline int32_t tt_qas_shadow_step_fast(int32_t q, float *shadow, float step, int32_t qmin, int32_t qmax)
{
    float v, f;
    int32_t t;
    if (step != step || *shadow != *shadow) return tt_qas_shadow_step(q, shadow, step, qmin, qmax);
    v = *shadow - step;
    if (v < (float)qmin) v = (float)qmin;
    if (v > (float)qmax) v = (float)qmax;
    *shadow = v;
    t = (int32_t)v;
    f = v - (float)t;                       /* exact */
    if (f >= 0.5f) t += 1;
    else if (f <= -0.5f) t -= 1;
    return t;
}

#endif
