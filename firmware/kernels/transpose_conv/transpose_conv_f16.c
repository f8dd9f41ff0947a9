/* Half-precision transposed convolution (portable): tt_transpose_conv_f32's gather on the
 * widened halves; per output element acc = bias, then + x * w over the taps (ky, kx) that
 * reach it and the input channels i, in that order, in float32; the activation, one rounding
 * to half (tinytrain.ops.f16.transpose_conv). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_transpose_conv_f16(const tt_f16 *x, const tt_dims *in,
                           const tt_f16 *w, const tt_f16 *bias, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    int32_t oy, ox, o, ky, kx, i;
    for (oy = 0; oy < out->h; ++oy) {
        for (ox = 0; ox < out->w; ++ox) {
            tt_f16 *yp = y + (oy * out->w + ox) * out->c;
            for (o = 0; o < out->c; ++o) {
                float acc = bias ? tt_h2f(bias[o]) : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ty = oy + g->pad_top - ky;
                    int32_t iy;
                    if (ty < 0 || ty % g->stride_h) continue;
                    iy = ty / g->stride_h;
                    if (iy >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t tx = ox + g->pad_left - kx;
                        const tt_f16 *xp, *wp;
                        int32_t ix;
                        if (tx < 0 || tx % g->stride_w) continue;
                        ix = tx / g->stride_w;
                        if (ix >= in->w) continue;
                        xp = x + (iy * in->w + ix) * in->c;
                        wp = w + ((o * kh + ky) * kw + kx) * in->c;
                        for (i = 0; i < in->c; ++i) acc += tt_h2f(xp[i]) * tt_h2f(wp[i]);
                    }
                }
                yp[o] = tt_f2h(tt_act_f16(acc, act));
            }
        }
    }
}
