/* int8 transposed convolution, LiteRT's reference_integer_ops::TransposeConv semantics.
 * x HWC, w OHWI, bias int32 (may be NULL), y HWC; g->pad_top/pad_left as TFLite computes them
 * on the output size. LiteRT scatters each input pixel into an int32 scratch; here each
 * output element gathers the taps that reach it (the same integer sum, no scratch), then
 * requantizes per output channel (double rounding, as conv2d). */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_transpose_conv_s8(const int8_t *x, const tt_dims *in,
                          const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                          const tt_geom *g, const tt_requant *q,
                          int8_t *y, const tt_dims *out)
{
    const int32_t cin = in->c;
    int32_t oy, ox, oc, ky, kx, ic;
    for (oy = 0; oy < out->h; oy++) {
        for (ox = 0; ox < out->w; ox++) {
            int8_t *yp = y + ((size_t)oy * out->w + ox) * out->c;
            for (oc = 0; oc < out->c; oc++) {
                int32_t acc = 0;
                for (ky = 0; ky < kh; ky++) {
                    const int32_t ty = oy + g->pad_top - ky;      /* = iy * stride_h */
                    int32_t iy;
                    if (ty < 0 || ty % g->stride_h) continue;
                    iy = ty / g->stride_h;
                    if (iy >= in->h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t tx = ox + g->pad_left - kx;
                        const int8_t *xp, *wp;
                        int32_t ix;
                        if (tx < 0 || tx % g->stride_w) continue;
                        ix = tx / g->stride_w;
                        if (ix >= in->w) continue;
                        xp = x + ((size_t)iy * in->w + ix) * cin;
                        wp = w + (((size_t)oc * kh + ky) * kw + kx) * cin;
                        for (ic = 0; ic < cin; ic++)
                            acc += ((int32_t)xp[ic] - q->in_zp) * (int32_t)wp[ic];
                    }
                }
                if (bias) acc = tt_sat_add_s32(acc, bias[oc]);
                yp[oc] = tt_requantize_s8(acc, q, oc);
            }
        }
    }
}
