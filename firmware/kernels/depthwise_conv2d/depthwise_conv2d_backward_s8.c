/* depthwise conv2d backward of int8 graphs: int8 weights / saved activations
 * dequantized on the fly, float gradients, fused QAS weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_depthwise_conv2d_grad_input_s8(const tt_conv_shape *s, const float *grad_y,
                                       const int8_t *w, const tt_weight_quant *wq,
                                       int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = out->c;
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
                        gx[c] += (gy[c] * wq->scale[wq->per_channel ? c : 0]) * (float)wp[c];
                    }
                }
            }
        }
    }
}

/* Gradient of trained channel j's real weights (kh, kw) at stride `stride`, added into
 * gw: x channel j (of ch->x_channels), grad_y channel yc. */
static void grad_weight_channel(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                const tt_act_quant *xq, const float *grad_y, int32_t j,
                                int32_t yc, float *gw, int32_t stride)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, xc = ch->x_channels;
    const float x_scale = xq->scale;
    const int32_t x_zp = xq->zero_point;
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
                        d * (float)((int32_t)x[(ih * in->w + iw) * xc + j] - x_zp);
                }
            }
        }
    }
}

void tt_depthwise_conv2d_grad_weight_s8(const tt_conv_shape *s, const tt_channels *ch,
                                        const int8_t *x, const tt_act_quant *xq,
                                        const float *grad_y, int32_t accumulate, float *grad_w)
{
    int32_t j;
    tt_zero_unless_f32(grad_w, s->kh * s->kw * ch->k, accumulate);
    for (j = 0; j < ch->k; ++j) {
        grad_weight_channel(s, ch, x, xq, grad_y, j, ch->index ? ch->index[j] : j, grad_w + j,
                            ch->k);
    }
}

void tt_depthwise_conv2d_update_weight_s8(const tt_conv_shape *s, const tt_channels *ch,
                                          int8_t *w, const tt_weight_quant *wq, const int8_t *x,
                                          const tt_act_quant *xq, const float *grad_y,
                                          const tt_update *u, float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k;
    int32_t j, p;
    for (j = 0; j < k; ++j) {
        const int32_t c = ch->index ? ch->index[j] : j;
        const float scale = wq->scale[wq->per_channel ? c : 0];
        tt_zero_unless_f32(scratch, spatial, 0);
        grad_weight_channel(s, ch, x, xq, grad_y, j, c, scratch, 1);
        for (p = 0; p < spatial; ++p) {
            int8_t *wp = w + p * ch->in_channels + c;
            *wp = (int8_t)tt_qas_rule(*wp, scratch[p], scale, &hp, u, p * k + j,
                                      TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    }
    tt_update_advance(u, spatial * k);
}
