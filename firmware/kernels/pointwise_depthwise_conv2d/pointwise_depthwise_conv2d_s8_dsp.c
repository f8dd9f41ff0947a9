/* int8 1x1 conv2d fused with the depthwise conv2d reading its output, for the Cortex-M DSP
 * extension; bit-exact with tt_pointwise_depthwise_conv2d_s8 (contract and scratch size in
 * tt_kernels_simd.h). The expanded rows are computed on demand into the same ring as the
 * reference's (ring_rows rows of in->w * mid_c bytes), each row by tt_conv2d_s8_dsp as a
 * one-row 1x1 convolution; each output row then runs the depthwise row block of
 * tt_depthwise_conv2d_s8_dsp, group by group, on the ring's rows. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

void tt_pointwise_depthwise_conv2d_s8_dsp(const int8_t *x, const tt_dims *in,
                                          const int8_t *w_pw, const int32_t *b_pw,
                                          const tt_requant *q_pw, const tt_rq_dsp *rq_pw, int32_t mid_c,
                                          const int8_t *w_dw, const int32_t *b_dw,
                                          int32_t kh, int32_t kw, const tt_geom *g,
                                          const tt_requant *q_dw, const tt_rq_dsp *rq_dw,
                                          int8_t *y, const tt_dims *out,
                                          int8_t *ring, int32_t ring_rows, void *scratch)
{
    const size_t row_bytes = (size_t)in->w * mid_c;
    const tt_dims row_in = {1, in->w, in->c}, row_mid = {1, in->w, mid_c};
    const tt_geom unit = {1, 1, 0, 0, 1, 1};
    const int32_t fast = tt_rq_dsp_all_fast(rq_dw, mid_c), clamp = tt_rq_needs_clamp(q_dw);
    tt_dw_group_dsp grp;
    tt_dw_rows r;
    int32_t next_row = 0;   /* the first expanded row not computed yet */
    int32_t oy, c, j, row;
    if (kh > TT_DW_MAX_KH || kh * kw > TT_DW_DSP_MAX_TAPS) {
        tt_pointwise_depthwise_conv2d_s8(x, in, w_pw, b_pw, q_pw, mid_c, w_dw, b_dw, kh, kw, g, q_dw,
                                         y, out, ring, ring_rows);
        return;
    }
    for (oy = 0; oy < out->h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_top;
        const int32_t lo = tt_max_i32(iy0, 0);
        const int32_t hi = tt_min_i32(iy0 + (kh - 1) * g->dil_h, in->h - 1);
        /* rows below lo are never read again (iy0 grows with oy) */
        for (row = tt_max_i32(next_row, lo); row <= hi; row++)
            tt_conv2d_s8_dsp(x + (size_t)row * in->w * in->c, &row_in, w_pw, b_pw, 1, 1, &unit, q_pw, rq_pw,
                             ring + (size_t)(row % ring_rows) * row_bytes, &row_mid, scratch);
        next_row = tt_max_i32(next_row, hi + 1);
        tt_dw_rows_of(&r, oy, kh, g, in->h);
        r.stride = mid_c;
        for (c = 0; c < mid_c; c += 4) {
            const int32_t n = mid_c - c < 4 ? mid_c - c : 4;
            tt_dw_group_prepare_dsp(&grp, w_dw, b_dw, rq_dw, q_dw->in_zp, c, n, kh * kw, mid_c);
            for (j = 0; j < r.n; j++)
                r.row[j] = ring + (size_t)(r.iy[j] % ring_rows) * row_bytes + c;
            tt_dw_row_dsp(&grp, &r, in->w, kh, kw, g, q_dw, y + (size_t)oy * out->w * mid_c + c, out->w,
                          mid_c, fast, clamp);
        }
    }
}
