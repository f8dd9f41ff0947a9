/* conv2d backward of int8 graphs: int8 weights / saved activations dequantized on the
 * fly, float gradients w.r.t. real values, fused QAS weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_conv2d_grad_input_s8(const float *grad_y, const tt_dims *out,
                             const int8_t *w, const float *w_scale, int32_t per_channel,
                             int32_t kh, int32_t kw, const tt_geom *g,
                             int32_t accumulate, float *grad_x, const tt_dims *in)
{
    int32_t oh, ow, ky, kx, o, i;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float *gy = grad_y + (oh * out->w + ow) * out->c;
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    float *gx;
                    if (iw < 0 || iw >= in->w) continue;
                    gx = grad_x + (ih * in->w + iw) * in->c;
                    for (o = 0; o < out->c; ++o) {
                        const int8_t *wp = w + ((o * kh + ky) * kw + kx) * in->c;
                        float d = gy[o];
                        if (d == 0.0f) continue;
                        d = d * w_scale[per_channel ? o : 0];
                        for (i = 0; i < in->c; ++i) gx[i] += d * (float)wp[i];
                    }
                }
            }
        }
    }
}

/* Gradient of output channel o's real weights, (kh, kw, k_in), added into gw. */
static void grad_weight_channel(const int8_t *x, const tt_dims *in, float x_scale, int32_t x_zp,
                                const float *grad_y, const tt_dims *out,
                                int32_t kh, int32_t kw, const tt_geom *g, int32_t k_in,
                                int32_t o, float *gw)
{
    int32_t oh, ow, ky, kx, i;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            float d = grad_y[(oh * out->w + ow) * out->c + o];
            if (d == 0.0f) continue;
            d = d * x_scale;
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    const int8_t *xp;
                    float *gp;
                    if (iw < 0 || iw >= in->w) continue;   /* padding: real value 0 */
                    xp = x + (ih * in->w + iw) * in->c;
                    gp = gw + (ky * kw + kx) * k_in;
                    for (i = 0; i < k_in; ++i) gp[i] += d * (float)((int32_t)xp[i] - x_zp);
                }
            }
        }
    }
}

void tt_conv2d_grad_weight_s8(const int8_t *x, const tt_dims *in, float x_scale, int32_t x_zp,
                              const float *grad_y, const tt_dims *out,
                              int32_t kh, int32_t kw, const tt_geom *g, int32_t k_in,
                              int32_t accumulate, float *grad_w)
{
    const int32_t per_out = kh * kw * k_in;
    int32_t o;
    tt_zero_unless_f32(grad_w, out->c * per_out, accumulate);
    for (o = 0; o < out->c; ++o) {
        grad_weight_channel(x, in, x_scale, x_zp, grad_y, out, kh, kw, g, k_in, o,
                            grad_w + o * per_out);
    }
}

void tt_conv2d_update_weight_s8(int8_t *w, int32_t in_channels,
                                const float *w_scale, int32_t per_channel,
                                const int8_t *x, const tt_dims *in, float x_scale, int32_t x_zp,
                                const float *grad_y, const tt_dims *out,
                                int32_t kh, int32_t kw, const tt_geom *g,
                                int32_t k_in, const int32_t *ch_index,
                                float lr, float momentum, float weight_decay,
                                float *m_buf, const tt_qas_state *qs, float *scratch)
{
    const int32_t spatial = kh * kw, per_out = spatial * k_in;
    int32_t o, s, j;
    for (o = 0; o < out->c; ++o) {
        const float scale = w_scale[per_channel ? o : 0];
        tt_zero_unless_f32(scratch, per_out, 0);
        grad_weight_channel(x, in, x_scale, x_zp, grad_y, out, kh, kw, g, k_in, o, scratch);
        for (s = 0; s < spatial; ++s) {
            int8_t *wr = w + (o * spatial + s) * in_channels;
            for (j = 0; j < k_in; ++j) {
                const int32_t e = o * per_out + s * k_in + j;
                int8_t *wp = wr + (ch_index ? ch_index[j] : j);
                *wp = (int8_t)tt_qas_rule(*wp, scratch[s * k_in + j], scale, lr, momentum,
                                          weight_decay, m_buf ? m_buf + e : NULL, qs, e,
                                          TT_QAS_S8_MIN, TT_QAS_S8_MAX);
            }
        }
    }
    tt_qas_state_advance(qs, out->c * per_out);
}
