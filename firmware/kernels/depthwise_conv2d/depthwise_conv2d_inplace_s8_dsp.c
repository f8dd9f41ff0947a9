/* int8 depthwise conv2d that may write its output over its input (y == x), for the
 * Cortex-M DSP extension; bit-exact with tt_depthwise_conv2d_inplace_s8 and
 * tt_depthwise_conv2d_s8 (contract and scratch size in tt_kernels_simd.h).
 *
 * One group of four channels at a time (the kernel of tt_depthwise_conv2d_s8_dsp). Instead
 * of the reference's whole-plane copy of one channel (h * w bytes), the group's input rows
 * go through a ring of (kh - 1) * dil_h + 1 rows (w * 4 bytes each): before output row oy,
 * every input row up to the last one it reads is copied in. An output row reads only the
 * ring, and with y == x (stride 1, same shape) writing it over input row oy loses nothing:
 * rows up to oy + pad_bottom >= oy are in the ring by then, and the ring holds exactly the
 * rows an output row spans. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

void tt_depthwise_conv2d_inplace_s8_dsp(const int8_t *x, const tt_dims *in,
                                        const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                        const tt_geom *g, const tt_requant *q, const tt_rq_dsp *rq,
                                        int8_t *y, const tt_dims *out, void *scratch)
{
    const int32_t ch = in->c, span = (kh - 1) * g->dil_h + 1;
    const size_t row_bytes = (size_t)in->w * 4;
    int8_t *ring = (int8_t *)scratch;
    const int32_t fast = tt_rq_dsp_all_fast(rq, ch), clamp = tt_rq_needs_clamp(q);
    tt_dw_group_dsp grp;
    tt_dw_rows r;
    int32_t c, oy, j, ix, next;
    if (kh > TT_DW_MAX_KH || kh * kw > TT_DW_DSP_MAX_TAPS) {
        /* kernels beyond the group's weight buffer: the reference, whose plane of h * w
         * bytes the scratch size accounts for in this case */
        tt_depthwise_conv2d_inplace_s8(x, in, w, bias, kh, kw, g, q, y, out, ring);
        return;
    }
    for (c = 0; c < ch; c += 4) {
        const int32_t n = ch - c < 4 ? ch - c : 4;
        tt_dw_group_prepare_dsp(&grp, w, bias, rq, q->in_zp, c, n, kh * kw, ch);
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
                if (n == 4) {
                    for (ix = 0; ix < in->w; ix++)
                        tt_store_s8x4(slot + 4 * ix, tt_load_s8x4(src + (size_t)ix * ch));
                } else {
                    int32_t k;
                    for (ix = 0; ix < in->w; ix++)
                        for (k = 0; k < n; k++)
                            slot[4 * ix + k] = src[(size_t)ix * ch + k];
                }
            }
            tt_dw_rows_of(&r, oy, kh, g, in->h);
            for (j = 0; j < r.n; j++)
                r.row[j] = ring + (size_t)(r.iy[j] % span) * row_bytes;
            r.stride = 4;
            tt_dw_row_dsp(&grp, &r, in->w, kh, kw, g, q, y + (size_t)oy * out->w * ch + c, out->w, ch,
                          fast, clamp);
        }
    }
}
