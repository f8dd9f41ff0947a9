/* exp and log in float32 that give the same bits on every target.
 *
 * Why: the C libraries round expf/logf differently (newlib's on the Cortex-M4F is the old
 * float-only fdlibm code, glibc's is nearly correctly rounded): for one model's logit
 * scale, 20 of the 256 values the softmax cross-entropy exponentiates came out one ulp
 * apart, so the device's softmax gradient differed from the host build's from the second
 * training step on and an fp32 shadow drifted away (docs/training.md). These functions
 * use only operations IEEE 754 rounds exactly (+, -, *, floor, conversions, exponent bit
 * manipulation) in a fixed order; everything here is compiled with -ffp-contract=off so no
 * multiply-add is fused. tinytrain/ieee_math.py computes the very same bits in numpy
 * (tests/test_ieee_math.py checks them against each other and against math.exp/log).
 *
 * Method (Cody-Waite reduction and Cephes-style minimax polynomials):
 *   exp(x) = 2^n * exp(r), n = floor(x / ln 2 + 1/2), r = x - n * ln2_hi - n * ln2_lo
 *   log(x) = e * ln 2 + log(m), x = m * 2^e with m in [sqrt(1/2), sqrt(2))
 * Error: within 2 ulp of the exact result on normal outputs (measured by the test). */
#ifndef TT_MATH_H
#define TT_MATH_H

#include <math.h>
#include <stdint.h>

/* 2^n as a float, for n in [-126, 127] (built from its exponent bits). */
static inline float tt_pow2i(int32_t n)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)(n + 127) << 23;
    return v.f;
}

static inline float tt_expf(float x)
{
    float z, r, rr, p;
    int32_t n;
    if (x != x) return x;
    if (x > 0x1.62e430p+6f) return INFINITY;      /* > ln(FLT_MAX) = 88.7228: overflows */
    if (x < -0x1.9fe36ap+6f) return 0.0f;         /* < ln(2^-150) = -103.972: rounds to 0 */
    z = floorf(x * 0x1.715476p+0f + 0.5f);        /* round(x / ln 2) */
    n = (int32_t)z;
    r = x - z * 0x1.63p-1f;                       /* ln 2 = 0.693359375 - 2.12194440e-4 */
    r = r - z * -0x1.bd0106p-13f;
    rr = r * r;
    p = 0x1.a0d2cep-13f;                          /* exp(r) = 1 + r + r^2 P(r) */
    p = p * r + 0x1.6e879cp-10f;
    p = p * r + 0x1.111210p-7f;
    p = p * r + 0x1.555382p-5f;
    p = p * r + 0x1.555554p-3f;
    p = p * r + 0x1.000000p-1f;
    p = p * rr + r;
    p = p + 1.0f;
    if (n > 127) {                                /* x near the overflow bound */
        p = p * 2.0f;
        n -= 1;
    }
    if (n < -126) {                               /* subnormal result: one rounding, at the end */
        return (p * tt_pow2i(n + 126)) * tt_pow2i(-126);
    }
    return p * tt_pow2i(n);
}

static inline float tt_logf(float x)
{
    union { uint32_t u; float f; } v;
    int32_t e = 0;
    float m, z, y, fe;
    if (x != x) return x;
    if (x < 0.0f) return NAN;
    if (x == 0.0f) return -INFINITY;
    if (x == INFINITY) return x;
    v.f = x;
    if (v.u < 0x00800000u) {                      /* subnormal: scale into the normal range */
        v.f = x * 0x1p24f;
        e = -24;
    }
    e += (int32_t)(v.u >> 23) - 126;              /* x = m * 2^e, m in [1/2, 1) */
    v.u = (v.u & 0x007FFFFFu) | 0x3F000000u;
    m = v.f;
    if (m < 0x1.6a09e6p-1f) {                     /* sqrt(1/2): m in [sqrt(1/2), sqrt(2)) */
        e -= 1;
        m = m + m - 1.0f;
    } else {
        m = m - 1.0f;
    }
    z = m * m;
    y = 0x1.204376p-4f;                           /* log(1 + m) = m - m^2/2 + m^3 P(m) */
    y = y * m - 0x1.d7a370p-4f;
    y = y * m + 0x1.de4a34p-4f;
    y = y * m - 0x1.fcba9ep-4f;
    y = y * m + 0x1.23d37ep-3f;
    y = y * m - 0x1.555ca0p-3f;
    y = y * m + 0x1.999d58p-3f;
    y = y * m - 0x1.fffff8p-3f;
    y = y * m + 0x1.555554p-2f;
    y = y * m * z;
    fe = (float)e;
    y = y + fe * -0x1.bd0106p-13f;
    y = y - 0.5f * z;
    m = m + y;
    return m + fe * 0x1.63p-1f;
}

/* The float activations built on tt_expf (the float32 and half kernels of logistic and tanh
 * share them; tinytrain/ops/logistic.py and tanh.py compute the same bits in numpy). A NaN
 * is returned as it came: through the negations its sign came out differently on the
 * Cortex-M4F and the Cortex-M55 builds (gcc's code for -x). */
static inline float tt_logisticf(float x)
{
    if (x != x) return x;
    return 1.0f / (1.0f + tt_expf(-x));
}

/* tanh: an odd polynomial below |x| = 1/8 (Taylor to x^7, < 4e-9 relative there), above it
 * (1 - e) / (1 + e) with e = tt_expf(-2|x|), the sign put back. */
static inline float tt_tanhf(float v)
{
    float a;
    if (v != v) return v;
    a = v < 0.0f ? -v : v;
    if (a < 0.125f) {
        const float x2 = v * v;
        return v + v * x2 * (-0x1.555556p-2f + x2 * (0x1.111112p-3f + x2 * -0x1.ba1ba2p-5f));
    } else {
        const float e = tt_expf(-2.0f * a);
        const float t = (1.0f - e) / (1.0f + e);
        return v < 0.0f ? -t : t;
    }
}

#endif
