/* int8 depthwise convolution that may write its output over its input (y == x), for
 * stride-1 layers whose output has the input's shape: one channel at a time, the
 * channel's input plane (in->h * in->w bytes) is copied to `plane` first, then output
 * channel c is written (HWC: only channel c's positions change, which were copied).
 * With y apart from x it is an ordinary depthwise convolution; results are identical
 * to tt_depthwise_conv2d_s8 either way. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_depthwise_conv2d_inplace_s8(const int8_t *x, const tt_dims *in,
                                    const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                    const tt_geom *g, const tt_requant *q,
                                    int8_t *y, const tt_dims *out, int8_t *plane)
{
    const int32_t ch = in->c;
    const size_t n = (size_t)in->h * in->w;
    int32_t oy, ox, c, ky, kx;
    size_t i;
    for (c = 0; c < ch; c++) {
        for (i = 0; i < n; i++)
            plane[i] = x[i * ch + c];
        for (oy = 0; oy < out->h; oy++) {
            const int32_t iy0 = oy * g->stride_h - g->pad_top;
            for (ox = 0; ox < out->w; ox++) {
                const int32_t ix0 = ox * g->stride_w - g->pad_left;
                int32_t acc = 0;
                for (ky = 0; ky < kh; ky++) {
                    const int32_t iy = iy0 + ky * g->dil_h;
                    if (iy < 0 || iy >= in->h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = ix0 + kx * g->dil_w;
                        if (ix < 0 || ix >= in->w) continue;
                        acc += ((int32_t)plane[(size_t)iy * in->w + ix] - q->in_zp)
                             * (int32_t)w[((size_t)ky * kw + kx) * ch + c];
                    }
                }
                if (bias) acc = tt_sat_add_s32(acc, bias[c]);
                y[((size_t)oy * out->w + ox) * ch + c] = tt_requantize_s8(acc, q, c);
            }
        }
    }
}
