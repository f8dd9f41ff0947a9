/* Float32 depthwise conv2d backward (depth multiplier 1): input gradient, weight
 * gradient of the trained channels, fused per-channel weight update. The bias update is
 * tt_bias_update_f32. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_window.h"

void tt_depthwise_conv2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y,
                                        const float *w, int32_t accumulate, float *grad_x)
{
    const int32_t ch = s->out->c, in_c = s->in->c;
    tt_conv_walk it;
    int32_t c;
    tt_zero_unless_f32(grad_x, s->in->h * s->in->w * in_c, accumulate);
    tt_conv_walk_start(&it, s->in, s->out, s->kh, s->kw, s->g);
    while (tt_conv_walk_next_pixel(&it)) {
        const float *gy = grad_y + it.out_pixel * ch;
        while (tt_conv_walk_next_tap(&it)) {
            const float *wp = w + it.tap * ch;
            float *gx = grad_x + it.in_pixel * in_c;
            for (c = 0; c < ch; ++c) gx[c] += gy[c] * wp[c];
        }
    }
}

/* Gradient of trained channel j's weights (kh, kw) at stride `stride`, added into gw:
 * x channel j (of ch->x_channels), grad_y channel yc. */
static void grad_weight_channel(const tt_conv_shape *s, const tt_channels *ch, const float *x,
                                const float *grad_y, int32_t j, int32_t yc, float *gw,
                                int32_t stride)
{
    const int32_t xc = ch->x_channels, out_c = s->out->c;
    tt_conv_walk it;
    tt_conv_walk_start(&it, s->in, s->out, s->kh, s->kw, s->g);
    while (tt_conv_walk_next_pixel(&it)) {
        const float d = grad_y[it.out_pixel * out_c + yc];
        if (d == 0.0f) continue;
        while (tt_conv_walk_next_tap(&it)) gw[it.tap * stride] += d * x[it.in_pixel * xc + j];
    }
}

void tt_depthwise_conv2d_grad_weight_f32(const tt_conv_shape *s, const tt_channels *ch,
                                         const float *x, const float *grad_y,
                                         int32_t accumulate, float *grad_w)
{
    int32_t j;
    tt_zero_unless_f32(grad_w, s->kh * s->kw * ch->k, accumulate);
    for (j = 0; j < ch->k; ++j) {
        grad_weight_channel(s, ch, x, grad_y, j, ch->index ? ch->index[j] : j, grad_w + j, ch->k);
    }
}

void tt_depthwise_conv2d_update_weight_f32(const tt_conv_shape *s, const tt_channels *ch,
                                           float *w, const float *x, const float *grad_y,
                                           const tt_update *u, float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k;
    int32_t j, p;
    for (j = 0; j < k; ++j) {
        const int32_t c = ch->index ? ch->index[j] : j;
        tt_zero_unless_f32(scratch, spatial, 0);
        grad_weight_channel(s, ch, x, grad_y, j, c, scratch, 1);
        for (p = 0; p < spatial; ++p) {
            float *wp = w + p * ch->in_channels + c;
            *wp = tt_sgd_rule(*wp, scratch[p], &hp, u, p * k + j);
        }
    }
}
