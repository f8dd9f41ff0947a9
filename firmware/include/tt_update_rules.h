/* The element-wise update rules of tt_train_kernels.h (SGD and QAS), shared by the
 * plain and the fused update kernels so that every path computes the same floats.
 * Header only: static inline functions, no state. */
#ifndef TT_UPDATE_RULES_H
#define TT_UPDATE_RULES_H

#include <math.h>
#include <stdint.h>

#define TT_QAS_S8_MIN (-127)
#define TT_QAS_S8_MAX 127

/* SGD on one float parameter: returns the new value; m (nullable) is its momentum. */
static inline float tt_sgd_rule(float w, float grad, float lr, float momentum,
                                float weight_decay, float *m)
{
    float g = grad + weight_decay * w;
    if (m) {
        *m = momentum * *m + g;
        g = *m;
    }
    return w - lr * g;
}

/* round_half_away(q - step) computed exactly (no intermediate float rounding of the
 * difference), saturated to [qmin, qmax]. NaN step: q unchanged. */
static inline int32_t tt_qas_round_exact(int32_t q, float step, int32_t qmin, int32_t qmax)
{
    const float big = 1099511627776.0f;   /* 2^40: beyond it the result saturates anyway */
    float whole, frac;
    int64_t m;
    if (step != step) return q;
    if (step > big) step = big;
    if (step < -big) step = -big;
    whole = floorf(step);
    frac = step - whole;                  /* exact: the fraction of a float is a float */
    m = (int64_t)q - (int64_t)whole;      /* q - step = m - frac, frac in [0, 1) */
    if (frac > 0.5f || (frac == 0.5f && m < 1)) m -= 1;
    if (m < qmin) m = qmin;
    if (m > qmax) m = qmax;
    return (int32_t)m;
}

/* One QAS step on a quantized parameter q with scale s (rules at the top of
 * tt_train_kernels.h); m and shadow are nullable. Returns the new q. */
static inline int32_t tt_qas_rule(int32_t q, float grad_real, float s, float lr, float momentum,
                                  float weight_decay, float *m, float *shadow,
                                  int32_t qmin, int32_t qmax)
{
    float v = shadow ? *shadow : (float)q;
    float g = grad_real / s;
    float step;
    g = g + weight_decay * v;
    if (m) {
        *m = momentum * *m + g;
        g = *m;
    }
    step = lr * g;
    if (!shadow) return tt_qas_round_exact(q, step, qmin, qmax);
    if (step != step) return q;
    v = v - step;
    if (v < (float)qmin) v = (float)qmin;
    if (v > (float)qmax) v = (float)qmax;
    *shadow = v;
    v = roundf(v);
    if (v >= (float)qmax) return qmax;    /* (float)INT32_MAX rounds up to 2^31 */
    if (v <= (float)qmin) return qmin;
    return (int32_t)v;
}

#endif
