/* int8 2-D convolution, TFLite reference ConvPerChannel semantics.
 * x HWC, w OHWI, bias int32 (may be NULL), y HWC. q->multiplier/shift hold one entry
 * per output channel. Taps outside the input contribute nothing. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_conv2d_s8(const int8_t *x, const tt_dims *in,
                  const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                  const tt_geom *g, const tt_requant *q,
                  int8_t *y, const tt_dims *out)
{
    const int32_t cin = in->c;
    int32_t oy, ox, oc, ky, kx, ic;
    for (oy = 0; oy < out->h; oy++) {
        const int32_t iy0 = oy * g->stride_h - g->pad_top;
        for (ox = 0; ox < out->w; ox++) {
            const int32_t ix0 = ox * g->stride_w - g->pad_left;
            int8_t *yp = y + ((size_t)oy * out->w + ox) * out->c;
            for (oc = 0; oc < out->c; oc++) {
                int32_t acc = 0;
                for (ky = 0; ky < kh; ky++) {
                    const int32_t iy = iy0 + ky * g->dil_h;
                    if (iy < 0 || iy >= in->h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = ix0 + kx * g->dil_w;
                        const int8_t *xp, *wp;
                        if (ix < 0 || ix >= in->w) continue;
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
