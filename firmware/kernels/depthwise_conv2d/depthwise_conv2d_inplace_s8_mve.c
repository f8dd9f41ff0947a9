/* int8 depthwise conv2d that may write its output over its input (y == x), for Helium
 * (MVE, Cortex-M55); bit-exact with tt_depthwise_conv2d_inplace_s8 (contract and scratch
 * size in tt_kernels_simd.h). The same ring of input rows as the _dsp variant, eight
 * channels per group (the kernel of tt_depthwise_conv2d_s8_mve). */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

void tt_depthwise_conv2d_inplace_s8_mve(const int8_t *x, const tt_dims *in,
                                        const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                        const tt_geom *g, const tt_requant *q,
                                        int8_t *y, const tt_dims *out, void *scratch)
{
    const int32_t ch = in->c, span = (kh - 1) * g->dil_h + 1;
    const size_t row_bytes = (size_t)in->w * 8;
    int8_t *ring = (int8_t *)scratch;
    tt_dw_group_mve grp;
    tt_dw_rows r;
    int32_t c, oy, j, ix, next;
    if (kh > TT_DW_MAX_KH || kh * kw > TT_DW_MVE_MAX_TAPS) {
        tt_depthwise_conv2d_inplace_s8(x, in, w, bias, kh, kw, g, q, y, out, ring);
        return;
    }
    for (c = 0; c < ch; c += 8) {
        const int32_t n = ch - c < 8 ? ch - c : 8;
        const mve_pred16_t p = vctp8q((uint32_t)n);
        tt_dw_group_prepare_mve(&grp, w, bias, q, c, n, kh * kw, ch);
        next = 0;   /* the first input row not yet in the ring */
        for (oy = 0; oy < out->h; oy++) {
            /* copy every input row up to the last one this output row reads: with y == x
             * that includes row oy, which writing this output row overwrites */
            const int32_t lo = oy * g->stride_h - g->pad_top;
            const int32_t hi = tt_min_i32(lo + (kh - 1) * g->dil_h, in->h - 1);
            if (next < lo) next = lo;
            for (; next <= hi; next++) {
                const int8_t *src = x + (size_t)next * in->w * ch + c;
                int8_t *slot = ring + (size_t)(next % span) * row_bytes;
                for (ix = 0; ix < in->w; ix++)
                    vstrbq_p_s8(slot + 8 * ix, vldrbq_z_s8(src + (size_t)ix * ch, p), p);
            }
            tt_dw_rows_of(&r, oy, kh, g, in->h);
            for (j = 0; j < r.n; j++)
                r.row[j] = ring + (size_t)(r.iy[j] % span) * row_bytes;
            r.stride = 8;
            tt_dw_row_mve(&grp, &r, in->w, kh, kw, g, q, y + (size_t)oy * out->w * ch + c, out->w, ch);
        }
    }
}

#endif /* __ARM_FEATURE_MVE */
