/* depthwise conv2d backward of int8 graphs: int8 weights / saved activations
 * dequantized on the fly, float gradients, fused QAS weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_depthwise_conv2d_grad_input_s8(const float *grad_y, const tt_dims *out,
                                       const int8_t *w, const float *w_scale, int32_t per_channel,
                                       int32_t kh, int32_t kw, const tt_geom *g,
                                       int32_t accumulate, float *grad_x, const tt_dims *in)
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
                    const int8_t *wp = w + (ky * kw + kx) * ch;
                    float *gx;
                    if (iw < 0 || iw >= in->w) continue;
                    gx = grad_x + (ih * in->w + iw) * in->c;
                    for (c = 0; c < ch; ++c) {
                        gx[c] += (gy[c] * w_scale[per_channel ? c : 0]) * (float)wp[c];
                    }
                }
            }
        }
    }
}

/* Gradient of one channel's real weights (kh, kw) at stride `stride`, added into gw:
 * x channel xc, grad_y channel yc. */
static void grad_weight_channel(const int8_t *x, const tt_dims *in, float x_scale, int32_t x_zp,
                                const float *grad_y, const tt_dims *out,
                                int32_t kh, int32_t kw, const tt_geom *g,
                                int32_t xc, int32_t yc, float *gw, int32_t stride)
{
    int32_t oh, ow, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            float d = grad_y[(oh * out->w + ow) * out->c + yc];
            if (d == 0.0f) continue;
            d = d * x_scale;
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    if (iw < 0 || iw >= in->w) continue;
                    gw[(ky * kw + kx) * stride] +=
                        d * (float)((int32_t)x[(ih * in->w + iw) * in->c + xc] - x_zp);
                }
            }
        }
    }
}

void tt_depthwise_conv2d_grad_weight_s8(const int8_t *x, const tt_dims *in,
                                        float x_scale, int32_t x_zp,
                                        const float *grad_y, const tt_dims *out,
                                        int32_t kh, int32_t kw, const tt_geom *g,
                                        int32_t k_ch, const int32_t *ch_index,
                                        int32_t accumulate, float *grad_w)
{
    int32_t j;
    tt_zero_unless_f32(grad_w, kh * kw * k_ch, accumulate);
    for (j = 0; j < k_ch; ++j) {
        grad_weight_channel(x, in, x_scale, x_zp, grad_y, out, kh, kw, g, j,
                            ch_index ? ch_index[j] : j, grad_w + j, k_ch);
    }
}

void tt_depthwise_conv2d_update_weight_s8(int8_t *w, const float *w_scale, int32_t per_channel,
                                          const int8_t *x, const tt_dims *in,
                                          float x_scale, int32_t x_zp,
                                          const float *grad_y, const tt_dims *out,
                                          int32_t kh, int32_t kw, const tt_geom *g,
                                          int32_t k_ch, const int32_t *ch_index,
                                          float lr, float momentum, float weight_decay,
                                          float *m_buf, const tt_qas_state *qs, float *scratch)
{
    const int32_t spatial = kh * kw;
    int32_t j, s;
    for (j = 0; j < k_ch; ++j) {
        const int32_t c = ch_index ? ch_index[j] : j;
        const float scale = w_scale[per_channel ? c : 0];
        tt_zero_unless_f32(scratch, spatial, 0);
        grad_weight_channel(x, in, x_scale, x_zp, grad_y, out, kh, kw, g, j, c, scratch, 1);
        for (s = 0; s < spatial; ++s) {
            const int32_t e = s * k_ch + j;
            int8_t *wp = w + s * out->c + c;
            *wp = (int8_t)tt_qas_rule(*wp, scratch[s], scale, lr, momentum, weight_decay,
                                      m_buf ? m_buf + e : NULL, qs, e, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    }
    tt_qas_state_advance(qs, spatial * k_ch);
}
