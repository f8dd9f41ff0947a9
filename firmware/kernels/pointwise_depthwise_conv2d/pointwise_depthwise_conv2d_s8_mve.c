/* int8 1x1 conv2d fused with the depthwise conv2d reading its output, for Helium (MVE,
 * Cortex-M55); bit-exact with tt_pointwise_depthwise_conv2d_s8 (contract and scratch size in
 * tt_kernels_simd.h). The reference's ring of expanded rows, each row computed by
 * tt_conv2d_s8_mve as a one-row 1x1 convolution; each output row runs the depthwise row
 * block of tt_depthwise_conv2d_s8_mve, eight channels at a time, on the ring's rows. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)

void tt_pointwise_depthwise_conv2d_s8_mve(const int8_t *x, const tt_dims *in,
                                          const int8_t *w_pw, const int32_t *b_pw,
                                          const tt_requant *q_pw, int32_t mid_c,
                                          const int8_t *w_dw, const int32_t *b_dw,
                                          int32_t kh, int32_t kw, const tt_geom *g,
                                          const tt_requant *q_dw,
                                          int8_t *y, const tt_dims *out,
                                          int8_t *ring, int32_t ring_rows, void *scratch)
{
    const size_t row_bytes = (size_t)in->w * mid_c;
    const tt_dims row_in = {1, in->w, in->c}, row_mid = {1, in->w, mid_c};
    const tt_geom unit = {1, 1, 0, 0, 1, 1};
    tt_dw_group_mve grp;
    tt_dw_rows r;
    int32_t next_row = 0;   /* the first expanded row not computed yet */
    int32_t oy, c, j, row;
    if (kh > TT_DW_MAX_KH || kh * kw > TT_DW_MVE_MAX_TAPS) {
        tt_pointwise_depthwise_conv2d_s8(x, in, w_pw, b_pw, q_pw, mid_c, w_dw, b_dw, kh, kw, g, q_dw,
                                         y, out, ring, ring_rows);
        return;
    }
    for (oy = 0; oy < out->h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_top;
        const int32_t lo = tt_max_i32(iy0, 0);
        const int32_t hi = tt_min_i32(iy0 + (kh - 1) * g->dil_h, in->h - 1);
        for (row = tt_max_i32(next_row, lo); row <= hi; row++)
            tt_conv2d_s8_mve(x + (size_t)row * in->w * in->c, &row_in, w_pw, b_pw, 1, 1, &unit, q_pw,
                             ring + (size_t)(row % ring_rows) * row_bytes, &row_mid, scratch);
        next_row = tt_max_i32(next_row, hi + 1);
        tt_dw_rows_of(&r, oy, kh, g, in->h);
        r.stride = mid_c;
        for (c = 0; c < mid_c; c += 8) {
            const int32_t n = mid_c - c < 8 ? mid_c - c : 8;
            tt_dw_group_prepare_mve(&grp, w_dw, b_dw, q_dw, c, n, kh * kw, mid_c);
            for (j = 0; j < r.n; j++)
                r.row[j] = ring + (size_t)(r.iy[j] % ring_rows) * row_bytes + c;
            tt_dw_row_mve(&grp, &r, in->w, kh, kw, g, q_dw, y + (size_t)oy * out->w * mid_c + c, out->w, mid_c);
        }
    }
}

#endif /* __ARM_FEATURE_MVE */
