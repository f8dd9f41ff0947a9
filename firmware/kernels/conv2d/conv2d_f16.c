/* Half-precision conv2d (portable): half storage, float32 arithmetic in the order of
 * tt_conv2d_f32 (bias, then ky, kx, input channel), one rounding to half (tt_f16.h). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_conv2d_f16(const tt_f16 *x, const tt_dims *in, const tt_f16 *w, const tt_f16 *bias,
                   int32_t kh, int32_t kw, const tt_geom *g, int32_t act, tt_f16 *y,
                   const tt_dims *out)
{
    int32_t oh, ow, o, ky, kx, i;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t ih0 = oh * g->stride_h - g->pad_top;
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            tt_f16 *yp = y + (oh * out->w + ow) * out->c;
            for (o = 0; o < out->c; ++o) {
                float acc = bias ? tt_h2f(bias[o]) : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = ih0 + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = iw0 + kx * g->dil_w;
                        const tt_f16 *xp, *wp;
                        if (iw < 0 || iw >= in->w) continue;
                        xp = x + (ih * in->w + iw) * in->c;
                        wp = w + ((o * kh + ky) * kw + kx) * in->c;
                        for (i = 0; i < in->c; ++i) acc += tt_h2f(xp[i]) * tt_h2f(wp[i]);
                    }
                }
                yp[o] = tt_f2h(tt_act_f16(acc, act));
            }
        }
    }
}
