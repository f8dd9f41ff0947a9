/* int8 fully connected for the Cortex-M DSP extension, bit-exact with tt_fully_connected_s8
 * (same arguments; contract in tt_kernels_simd.h).
 *
 * Two outputs at a time share the input: per four inputs one load, two SXTAB16 (in_zp
 * subtracted, lanes (x0,x2), (x1,x3)), per output one weight load, two SXTB16 and two SMLAD.
 * The sums are exact; the bias and, after the rescale, out_zp are added with QADD (the
 * reference's saturating adds). The single-rounding rescale of LiteRT's per-channel
 * FULLY_CONNECTED stays the reference's (one 64-bit multiply per output). Little-endian
 * targets only. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

static inline int32_t load_s8_partial(const int8_t *p, int32_t n, int8_t fill)
{
    int8_t t[4];
    int32_t i;
    for (i = 0; i < 4; i++)
        t[i] = i < n ? p[i] : fill;
    return tt_load_s8x4(t);
}

/* The exact sum of output o to its int8: + bias and, after the rescale, + out_zp, both
 * saturating (QADD) as the reference. */
static inline int8_t finish(int32_t acc, const int32_t *bias, const tt_requant *q, int32_t o)
{
    if (bias) acc = tt_qadd(acc, bias[o]);
    acc = tt_qadd(tt_mul_by_quantized_multiplier_single_round(acc, q->multiplier[o], q->shift[o]), q->out_zp);
    return (int8_t)tt_clamp_i32(acc, q->act_min, q->act_max);
}

void tt_fully_connected_s8_dsp(const int8_t *x, int32_t in_features,
                               const int8_t *w, const int32_t *bias, int32_t out_features,
                               const tt_requant *q, int8_t *y)
{
    const int32_t n4 = in_features & ~3, nt = in_features & 3;
    const int32_t nzp2 = tt_splat_s16x2(-q->in_zp);
    /* the last partial four: inputs padded with in_zp (so they count zero), weights with 0 */
    const int32_t xt = nt ? load_s8_partial(x + n4, nt, (int8_t)q->in_zp) : 0;
    const int32_t xt02 = tt_sxtab16(nzp2, xt), xt13 = tt_sxtab16_ror8(nzp2, xt);
    int32_t o, i;
    for (o = 0; o + 1 < out_features; o += 2) {
        const int8_t *wa = w + (size_t)o * in_features;
        const int8_t *wb = wa + in_features;
        int32_t sa = 0, sb = 0;
        for (i = 0; i < n4; i += 4) {
            const int32_t v = tt_load_s8x4(x + i);
            const int32_t x02 = tt_sxtab16(nzp2, v), x13 = tt_sxtab16_ror8(nzp2, v);
            const int32_t va = tt_load_s8x4(wa + i), vb = tt_load_s8x4(wb + i);
            sa = tt_smlad(x13, tt_sxtb16_ror8(va), tt_smlad(x02, tt_sxtb16(va), sa));
            sb = tt_smlad(x13, tt_sxtb16_ror8(vb), tt_smlad(x02, tt_sxtb16(vb), sb));
        }
        if (nt) {
            const int32_t va = load_s8_partial(wa + n4, nt, 0), vb = load_s8_partial(wb + n4, nt, 0);
            sa = tt_smlad(xt13, tt_sxtb16_ror8(va), tt_smlad(xt02, tt_sxtb16(va), sa));
            sb = tt_smlad(xt13, tt_sxtb16_ror8(vb), tt_smlad(xt02, tt_sxtb16(vb), sb));
        }
        y[o] = finish(sa, bias, q, o);
        y[o + 1] = finish(sb, bias, q, o + 1);
    }
    if (o < out_features) {
        const int8_t *wa = w + (size_t)o * in_features;
        int32_t sa = 0;
        for (i = 0; i < n4; i += 4) {
            const int32_t v = tt_load_s8x4(x + i);
            const int32_t va = tt_load_s8x4(wa + i);
            sa = tt_smlad(tt_sxtab16_ror8(nzp2, v), tt_sxtb16_ror8(va),
                          tt_smlad(tt_sxtab16(nzp2, v), tt_sxtb16(va), sa));
        }
        if (nt) {
            const int32_t va = load_s8_partial(wa + n4, nt, 0);
            sa = tt_smlad(xt13, tt_sxtb16_ror8(va), tt_smlad(xt02, tt_sxtb16(va), sa));
        }
        y[o] = finish(sa, bias, q, o);
    }
}
