/* Half-precision depthwise conv2d (portable): bias, then + x*w over ky, kx in float32,
 * one rounding to half. */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_depthwise_conv2d_f16(const tt_f16 *x, const tt_dims *in, const tt_f16 *w,
                             const tt_f16 *bias, int32_t kh, int32_t kw, const tt_geom *g,
                             int32_t act, tt_f16 *y, const tt_dims *out)
{
    const int32_t ch = out->c;
    int32_t oh, ow, c, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            for (c = 0; c < ch; ++c) {
                float acc = bias ? tt_h2f(bias[c]) : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        if (iw < 0 || iw >= in->w) continue;
                        acc += tt_h2f(x[(ih * in->w + iw) * in->c + c]) * tt_h2f(w[(ky * kw + kx) * ch + c]);
                    }
                }
                y[(oh * out->w + ow) * ch + c] = tt_f2h(tt_act_f16(acc, act));
            }
        }
    }
}
