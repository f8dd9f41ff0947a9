/* Float32 conv2d, HWC activations, OHWI weights, fused activation. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_conv2d_f32(const float *x, const tt_dims *in,
                   const float *w, const float *bias, int32_t kh, int32_t kw,
                   const tt_geom *g, int32_t act, float *y, const tt_dims *out)
{
    int32_t oh, ow, o, ky, kx, i;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t ih0 = oh * g->stride_h - g->pad_top;
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            float *yp = y + (oh * out->w + ow) * out->c;
            for (o = 0; o < out->c; ++o) {
                float acc = bias ? bias[o] : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = ih0 + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = iw0 + kx * g->dil_w;
                        const float *xp, *wp;
                        if (iw < 0 || iw >= in->w) continue;
                        xp = x + (ih * in->w + iw) * in->c;
                        wp = w + ((o * kh + ky) * kw + kx) * in->c;
                        for (i = 0; i < in->c; ++i) acc += xp[i] * wp[i];
                    }
                }
                yp[o] = tt_act_f32(acc, act);
            }
        }
    }
}
