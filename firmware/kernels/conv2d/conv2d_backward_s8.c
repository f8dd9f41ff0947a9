/* conv2d backward of int8 graphs: int8 weights / saved activations dequantized on the
 * fly, float gradients w.r.t. real values, fused QAS weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_window.h"

void tt_conv2d_grad_input_s8(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                             const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    const int32_t cin = s->in->c, cout = s->out->c, taps = s->kh * s->kw;
    tt_conv_walk it;
    int32_t o, i;
    tt_zero_unless_f32(grad_x, s->in->h * s->in->w * cin, accumulate);
    tt_conv_walk_start(&it, s->in, s->out, s->kh, s->kw, s->g);
    while (tt_conv_walk_next_pixel(&it)) {
        const float *gy = grad_y + it.out_pixel * cout;
        while (tt_conv_walk_next_tap(&it)) {
            float *gx = grad_x + it.in_pixel * cin;
            for (o = 0; o < cout; ++o) {
                const int8_t *wp = w + (o * taps + it.tap) * cin;
                float d = gy[o];
                if (d == 0.0f) continue;
                d = d * wq->scale[wq->per_channel ? o : 0];
                for (i = 0; i < cin; ++i) gx[i] += d * (float)wp[i];
            }
        }
    }
}

/* Gradient of output channel o's real weights, (kh, kw, k), added into gw; x has
 * ch->x_channels channels per pixel. */
static void grad_weight_channel(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                const tt_act_quant *xq, const float *grad_y, int32_t o, float *gw)
{
    const int32_t k = ch->k, xc = ch->x_channels, cout = s->out->c;
    const float x_scale = xq->scale;
    const int32_t x_zp = xq->zero_point;
    tt_conv_walk it;
    int32_t i;
    tt_conv_walk_start(&it, s->in, s->out, s->kh, s->kw, s->g);
    while (tt_conv_walk_next_pixel(&it)) {
        float d = grad_y[it.out_pixel * cout + o];
        if (d == 0.0f) continue;
        d = d * x_scale;
        while (tt_conv_walk_next_tap(&it)) {      /* padding taps: real value 0, absent */
            const int8_t *xp = x + it.in_pixel * xc;
            float *gp = gw + it.tap * k;
            for (i = 0; i < k; ++i) gp[i] += d * (float)((int32_t)xp[i] - x_zp);
        }
    }
}

void tt_conv2d_grad_weight_s8(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                              const tt_act_quant *xq, const float *grad_y, int32_t accumulate,
                              float *grad_w)
{
    const int32_t per_out = s->kh * s->kw * ch->k;
    int32_t o;
    tt_zero_unless_f32(grad_w, s->out->c * per_out, accumulate);
    for (o = 0; o < s->out->c; ++o) {
        grad_weight_channel(s, ch, x, xq, grad_y, o, grad_w + o * per_out);
    }
}

void tt_conv2d_update_weight_s8(const tt_conv_shape *s, const tt_channels *ch, int8_t *w,
                                const tt_weight_quant *wq, const int8_t *x,
                                const tt_act_quant *xq, const float *grad_y, const tt_update *u,
                                float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k, per_out = spatial * k;
    int32_t o, p, j;
    for (o = 0; o < s->out->c; ++o) {
        const float scale = wq->scale[wq->per_channel ? o : 0];
        tt_zero_unless_f32(scratch, per_out, 0);
        grad_weight_channel(s, ch, x, xq, grad_y, o, scratch);
        for (p = 0; p < spatial; ++p) {
            int8_t *wr = w + (o * spatial + p) * ch->in_channels;
            for (j = 0; j < k; ++j) {
                const int32_t e = o * per_out + p * k + j;
                int8_t *wp = wr + (ch->index ? ch->index[j] : j);
                *wp = (int8_t)tt_qas_rule(*wp, scratch[p * k + j], scale, &hp, u, e,
                                          TT_QAS_S8_MIN, TT_QAS_S8_MAX);
            }
        }
    }
    tt_update_advance(u, s->out->c * per_out);
}
