/* Float32 depthwise conv2d (depth multiplier 1), HWC weights, fused activation. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_depthwise_conv2d_f32(const float *x, const tt_dims *in,
                             const float *w, const float *bias, int32_t kh, int32_t kw,
                             const tt_geom *g, int32_t act, float *y, const tt_dims *out)
{
    int32_t oh, ow, c, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t ih0 = oh * g->stride_h - g->pad_top;
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            float *yp = y + (oh * out->w + ow) * out->c;
            for (c = 0; c < out->c; ++c) {
                float acc = bias ? bias[c] : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = ih0 + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = iw0 + kx * g->dil_w;
                        if (iw < 0 || iw >= in->w) continue;
                        acc += x[(ih * in->w + iw) * in->c + c] * w[(ky * kw + kx) * out->c + c];
                    }
                }
                yp[c] = tt_act_f32(acc, act);
            }
        }
    }
}
