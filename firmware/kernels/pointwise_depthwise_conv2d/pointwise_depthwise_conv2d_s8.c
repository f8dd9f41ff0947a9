/* int8 1x1 conv2d (stride 1, no padding) fused with the depthwise_conv2d reading its
 * output. The expanded tensor (in->h x in->w x mid_c) never exists in full: its rows
 * are computed on demand into `ring`, ring_rows rows of in->w * mid_c bytes (row r in
 * slot r % ring_rows), ring_rows >= min(dilated kernel height, in->h). Results are
 * bit-identical to tt_conv2d_s8 then tt_depthwise_conv2d_s8 (same requantization of
 * the intermediate: q_pw->out_zp is q_dw->in_zp). */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

/* One row of the pointwise output into its ring slot. */
static void pointwise_row(const int8_t *x, const tt_dims *in, int32_t row,
                          const int8_t *w, const int32_t *bias, const tt_requant *q,
                          int32_t mid_c, int8_t *dst)
{
    const int32_t cin = in->c;
    int32_t ix, oc, ic;
    for (ix = 0; ix < in->w; ix++) {
        const int8_t *xp = x + ((size_t)row * in->w + ix) * cin;
        int8_t *dp = dst + (size_t)ix * mid_c;
        for (oc = 0; oc < mid_c; oc++) {
            const int8_t *wp = w + (size_t)oc * cin;
            int32_t acc = 0;
            for (ic = 0; ic < cin; ic++)
                acc += ((int32_t)xp[ic] - q->in_zp) * (int32_t)wp[ic];
            if (bias) acc = tt_sat_add_s32(acc, bias[oc]);
            dp[oc] = tt_requantize_s8(acc, q, oc);
        }
    }
}

void tt_pointwise_depthwise_conv2d_s8(const int8_t *x, const tt_dims *in,
                                      const int8_t *w_pw, const int32_t *b_pw,
                                      const tt_requant *q_pw, int32_t mid_c,
                                      const int8_t *w_dw, const int32_t *b_dw,
                                      int32_t kh, int32_t kw, const tt_geom *g,
                                      const tt_requant *q_dw,
                                      int8_t *y, const tt_dims *out,
                                      int8_t *ring, int32_t ring_rows)
{
    const size_t row_bytes = (size_t)in->w * mid_c;
    int32_t next_row = 0;   /* the first expanded row not computed yet */
    int32_t oy, ox, c, ky, kx, r;
    for (oy = 0; oy < out->h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_top;
        const int32_t lo = tt_max_i32(iy0, 0);
        const int32_t hi = tt_min_i32(iy0 + (kh - 1) * g->dil_h, in->h - 1);
        /* rows below lo are never read again (iy0 grows with oy) */
        for (r = tt_max_i32(next_row, lo); r <= hi; r++)
            pointwise_row(x, in, r, w_pw, b_pw, q_pw, mid_c, ring + (size_t)(r % ring_rows) * row_bytes);
        next_row = tt_max_i32(next_row, hi + 1);
        for (ox = 0; ox < out->w; ox++) {
            const int32_t ix0 = ox * g->stride_w - g->pad_left;
            int8_t *yp = y + ((size_t)oy * out->w + ox) * mid_c;
            for (c = 0; c < mid_c; c++) {
                int32_t acc = 0;
                for (ky = 0; ky < kh; ky++) {
                    const int32_t iy = iy0 + ky * g->dil_h;
                    const int8_t *rp;
                    if (iy < 0 || iy >= in->h) continue;
                    rp = ring + (size_t)(iy % ring_rows) * row_bytes;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = ix0 + kx * g->dil_w;
                        if (ix < 0 || ix >= in->w) continue;
                        acc += ((int32_t)rp[(size_t)ix * mid_c + c] - q_dw->in_zp)
                             * (int32_t)w_dw[((size_t)ky * kw + kx) * mid_c + c];
                    }
                }
                if (b_dw) acc = tt_sat_add_s32(acc, b_dw[c]);
                yp[c] = tt_requantize_s8(acc, q_dw, c);
            }
        }
    }
}
