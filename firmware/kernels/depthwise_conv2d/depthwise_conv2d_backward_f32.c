/* Float32 depthwise conv2d backward (depth multiplier 1): input gradient, weight
 * gradient of k_ch channels, fused per-channel weight update. The bias gradient is
 * tt_conv2d_grad_bias_f32. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_depthwise_conv2d_grad_input_f32(const float *grad_y, const tt_dims *out,
                                        const float *w, int32_t kh, int32_t kw,
                                        const tt_geom *g, int32_t accumulate,
                                        float *grad_x, const tt_dims *in)
{
    const int32_t ch = out->c;
    int32_t oh, ow, ky, kx, c;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float *gy = grad_y + (oh * out->w + ow) * ch;
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    const float *wp = w + (ky * kw + kx) * ch;
                    float *gx;
                    if (iw < 0 || iw >= in->w) continue;
                    gx = grad_x + (ih * in->w + iw) * in->c;
                    for (c = 0; c < ch; ++c) gx[c] += gy[c] * wp[c];
                }
            }
        }
    }
}

/* Gradient of one channel's weights (kh, kw) at stride `stride`, added into gw: x
 * channel xc, grad_y channel yc. */
static void grad_weight_channel(const float *x, const tt_dims *in,
                                const float *grad_y, const tt_dims *out,
                                int32_t kh, int32_t kw, const tt_geom *g,
                                int32_t xc, int32_t yc, float *gw, int32_t stride)
{
    int32_t oh, ow, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float d = grad_y[(oh * out->w + ow) * out->c + yc];
            if (d == 0.0f) continue;
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    if (iw < 0 || iw >= in->w) continue;
                    gw[(ky * kw + kx) * stride] += d * x[(ih * in->w + iw) * in->c + xc];
                }
            }
        }
    }
}

void tt_depthwise_conv2d_grad_weight_f32(const float *x, const tt_dims *in,
                                         const float *grad_y, const tt_dims *out,
                                         int32_t kh, int32_t kw, const tt_geom *g,
                                         int32_t k_ch, const int32_t *ch_index,
                                         int32_t accumulate, float *grad_w)
{
    int32_t j;
    tt_zero_unless_f32(grad_w, kh * kw * k_ch, accumulate);
    for (j = 0; j < k_ch; ++j) {
        grad_weight_channel(x, in, grad_y, out, kh, kw, g, j, ch_index ? ch_index[j] : j,
                            grad_w + j, k_ch);
    }
}

void tt_depthwise_conv2d_update_weight_f32(float *w, const float *x, const tt_dims *in,
                                           const float *grad_y, const tt_dims *out,
                                           int32_t kh, int32_t kw, const tt_geom *g,
                                           int32_t k_ch, const int32_t *ch_index,
                                           float lr, float momentum, float weight_decay,
                                           float *m_buf, float *scratch)
{
    const int32_t spatial = kh * kw;
    int32_t j, s;
    for (j = 0; j < k_ch; ++j) {
        const int32_t c = ch_index ? ch_index[j] : j;
        tt_zero_unless_f32(scratch, spatial, 0);
        grad_weight_channel(x, in, grad_y, out, kh, kw, g, j, c, scratch, 1);
        for (s = 0; s < spatial; ++s) {
            float *wp = w + s * out->c + c;
            *wp = tt_sgd_rule(*wp, scratch[s], lr, momentum, weight_decay,
                              m_buf ? m_buf + s * k_ch + j : NULL);
        }
    }
}
