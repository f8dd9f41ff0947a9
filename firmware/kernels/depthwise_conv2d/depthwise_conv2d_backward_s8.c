/* depthwise conv2d backward of int8 graphs: int8 weights / saved activations
 * dequantized on the fly, float gradients, fused QAS weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_window.h"

void tt_depthwise_conv2d_grad_input_s8(const tt_conv_shape *s, const float *grad_y,
                                       const int8_t *w, const tt_weight_quant *wq,
                                       int32_t accumulate, float *grad_x)
{
    const int32_t ch = s->out->c, in_c = s->in->c;
    tt_conv_walk it;
    int32_t c;
    tt_zero_unless_f32(grad_x, s->in->h * s->in->w * in_c, accumulate);
    tt_conv_walk_start(&it, s->in, s->out, s->kh, s->kw, s->g);
    while (tt_conv_walk_next_pixel(&it)) {
        const float *gy = grad_y + it.out_pixel * ch;
        while (tt_conv_walk_next_tap(&it)) {
            const int8_t *wp = w + it.tap * ch;
            float *gx = grad_x + it.in_pixel * in_c;
            for (c = 0; c < ch; ++c) {
                gx[c] += (gy[c] * wq->scale[wq->per_channel ? c : 0]) * (float)wp[c];
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
    const int32_t xc = ch->x_channels, out_c = s->out->c;
    const float x_scale = xq->scale;
    const int32_t x_zp = xq->zero_point;
    tt_conv_walk it;
    tt_conv_walk_start(&it, s->in, s->out, s->kh, s->kw, s->g);
    while (tt_conv_walk_next_pixel(&it)) {
        float d = grad_y[it.out_pixel * out_c + yc];
        if (d == 0.0f) continue;
        d = d * x_scale;
        while (tt_conv_walk_next_tap(&it)) {
            gw[it.tap * stride] += d * (float)((int32_t)x[it.in_pixel * xc + j] - x_zp);
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
