/* Float32 conv2d backward: input gradient (transposed conv), weight gradient over the
 * trained input channels, and the fused per-channel weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_window.h"

void tt_conv2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y, const float *w,
                              int32_t accumulate, float *grad_x)
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
                const float *wp = w + (o * taps + it.tap) * cin;
                const float d = gy[o];
                if (d == 0.0f) continue;   /* masked (relu) gradients are often 0 */
                for (i = 0; i < cin; ++i) gx[i] += d * wp[i];
            }
        }
    }
}

/* Gradient of output channel o's weights, (kh, kw, k), added into gw; x has
 * ch->x_channels channels per pixel. Each element takes d * x over the output pixels in
 * order (pixels with d == 0 skipped, taps outside the input absent: tt_conv_walk's order);
 * with dil_w == 1 and x holding just the k trained channels a kernel row's valid taps are
 * one contiguous span of x and of gw. */
static void grad_weight_channel(const tt_conv_shape *s, const tt_channels *ch, const float *x,
                                const float *grad_y, int32_t o, float *gw)
{
    const tt_geom *g = s->g;
    const int32_t kw = s->kw, k = ch->k, xc = ch->x_channels, in_w = s->in->w, cout = s->out->c;
    const int32_t contiguous = g->dil_w == 1 && xc == k;
    tt_conv_walk it;
    int32_t ky, i;
    tt_conv_walk_start(&it, s->in, s->out, s->kh, kw, g);
    while (tt_conv_walk_next_pixel(&it)) {
        const float d = grad_y[it.out_pixel * cout + o];
        if (d == 0.0f) continue;
        if (!contiguous) {
            while (tt_conv_walk_next_tap(&it)) {
                const float *xp = x + it.in_pixel * xc;
                float *gp = gw + it.tap * k;
                for (i = 0; i < k; ++i) gp[i] += d * xp[i];
            }
            continue;
        }
        for (ky = it.ky0; ky < it.ky1; ++ky) {    /* gw is the caller's gradient or scratch, never x */
            const int32_t span = (it.kx1 - it.kx0) * k;
            const float *restrict xp = x + ((it.ih0 + ky * g->dil_h) * in_w + it.iw0 + it.kx0) * xc;
            float *restrict gp = gw + (ky * kw + it.kx0) * k;
            for (i = 0; i < span; ++i) gp[i] += d * xp[i];
        }
    }
}

void tt_conv2d_grad_weight_f32(const tt_conv_shape *s, const tt_channels *ch, const float *x,
                               const float *grad_y, int32_t accumulate, float *grad_w)
{
    const int32_t per_out = s->kh * s->kw * ch->k;
    int32_t o;
    tt_zero_unless_f32(grad_w, s->out->c * per_out, accumulate);
    for (o = 0; o < s->out->c; ++o) {
        grad_weight_channel(s, ch, x, grad_y, o, grad_w + o * per_out);
    }
}

void tt_conv2d_update_weight_f32(const tt_conv_shape *s, const tt_channels *ch, float *w,
                                 const float *x, const float *grad_y, const tt_update *u,
                                 float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k, per_out = spatial * k;
    int32_t o, p, j;
    for (o = 0; o < s->out->c; ++o) {
        tt_zero_unless_f32(scratch, per_out, 0);
        grad_weight_channel(s, ch, x, grad_y, o, scratch);
        for (p = 0; p < spatial; ++p) {
            float *wr = w + (o * spatial + p) * ch->in_channels;
            for (j = 0; j < k; ++j) {
                float *wp = wr + (ch->index ? ch->index[j] : j);
                *wp = tt_sgd_rule(*wp, scratch[p * k + j], &hp, u, o * per_out + p * k + j);
            }
        }
    }
}
