/* int8 fully connected for Helium (MVE, Cortex-M55), bit-exact with tt_fully_connected_s8
 * (same arguments; contract in tt_kernels_simd.h).
 *
 * Four outputs at a time share each 16-input load: per 16 inputs one input load, four weight
 * loads, four VMLADAVA and four VADDVA (the weights' sums: in_zp is folded as
 * sum((x - zp) w) = sum(x w) - zp sum(w), exact modulo 2^32); the last partial 16 is
 * tail-predicated. The bias and, after the rescale, out_zp are added with saturation (the
 * reference's adds); the single-rounding rescale stays the reference's (one 64-bit multiply
 * per output). */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* Output o from sum(x w) and sum(w): sum((x - zp) w) exactly (modulo 2^32, and the true sum
 * fits an int32), then + bias and, after the rescale, + out_zp, both saturating as the
 * reference. */
static inline int8_t finish(int32_t acc, int32_t wsum, const int32_t *bias, const tt_requant *q, int32_t o)
{
    acc = (int32_t)((uint32_t)acc - (uint32_t)q->in_zp * (uint32_t)wsum);
    if (bias) acc = tt_qadd(acc, bias[o]);
    acc = tt_mul_by_quantized_multiplier_single_round(acc, q->multiplier[o], q->shift[o]);
    acc = tt_qadd(acc, q->out_zp);
    return (int8_t)tt_clamp_i32(acc, q->act_min, q->act_max);
}

void tt_fully_connected_s8_mve(const int8_t *x, int32_t in_features,
                               const int8_t *w, const int32_t *bias, int32_t out_features,
                               const tt_requant *q, int8_t *y)
{
    const int32_t n = in_features;
    const int32_t tail = n & 15;
    const mve_pred16_t pt = vctp8q((uint32_t)tail);
    int32_t o, i;
    for (o = 0; o + 3 < out_features; o += 4) {
        const int8_t *w0 = w + (size_t)o * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        const int8_t *xp = x;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int32_t u0 = 0, u1 = 0, u2 = 0, u3 = 0;
        int8x16_t xv, v;
        for (i = n >> 4; i > 0; i--) {
            xv = vldrbq_s8(xp);
            v = vldrbq_s8(w0);
            s0 = vmladavaq_s8(s0, xv, v);
            u0 = vaddvaq_s8(u0, v);
            v = vldrbq_s8(w1);
            s1 = vmladavaq_s8(s1, xv, v);
            u1 = vaddvaq_s8(u1, v);
            v = vldrbq_s8(w2);
            s2 = vmladavaq_s8(s2, xv, v);
            u2 = vaddvaq_s8(u2, v);
            v = vldrbq_s8(w3);
            s3 = vmladavaq_s8(s3, xv, v);
            u3 = vaddvaq_s8(u3, v);
            xp += 16;
            w0 += 16;
            w1 += 16;
            w2 += 16;
            w3 += 16;
        }
        if (tail) {
            xv = vldrbq_z_s8(xp, pt);
            v = vldrbq_z_s8(w0, pt);
            s0 = vmladavaq_s8(s0, xv, v);
            u0 = vaddvaq_s8(u0, v);
            v = vldrbq_z_s8(w1, pt);
            s1 = vmladavaq_s8(s1, xv, v);
            u1 = vaddvaq_s8(u1, v);
            v = vldrbq_z_s8(w2, pt);
            s2 = vmladavaq_s8(s2, xv, v);
            u2 = vaddvaq_s8(u2, v);
            v = vldrbq_z_s8(w3, pt);
            s3 = vmladavaq_s8(s3, xv, v);
            u3 = vaddvaq_s8(u3, v);
        }
        y[o] = finish(s0, u0, bias, q, o);
        y[o + 1] = finish(s1, u1, bias, q, o + 1);
        y[o + 2] = finish(s2, u2, bias, q, o + 2);
        y[o + 3] = finish(s3, u3, bias, q, o + 3);
    }
    for (; o < out_features; o++) {
        const int8_t *w0 = w + (size_t)o * n;
        int32_t s0 = 0, u0 = 0;
        for (i = 0; i + 16 <= n; i += 16) {
            const int8x16_t v = vldrbq_s8(w0 + i);
            s0 = vmladavaq_s8(s0, vldrbq_s8(x + i), v);
            u0 = vaddvaq_s8(u0, v);
        }
        if (tail) {
            const int8x16_t v = vldrbq_z_s8(w0 + i, pt);
            s0 = vmladavaq_s8(s0, vldrbq_z_s8(x + i, pt), v);
            u0 = vaddvaq_s8(u0, v);
        }
        y[o] = finish(s0, u0, bias, q, o);
    }
}

#endif /* __ARM_FEATURE_MVE */
