/* Float32 conv2d backward: input gradient (transposed conv), weight gradient over the
 * trained input channels, and the fused per-channel weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_window.h"

void tt_conv2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y, const float *w,
                              int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw;
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
                        const float *wp = w + ((o * kh + ky) * kw + kx) * in->c;
                        const float d = gy[o];
                        if (d == 0.0f) continue;   /* masked (relu) gradients are often 0 */
                        for (i = 0; i < in->c; ++i) gx[i] += d * wp[i];
                    }
                }
            }
        }
    }
}

/* Gradient of output channel o's weights, (kh, kw, k), added into gw; x has
 * ch->x_channels channels per pixel. Each element takes d * x over the output pixels in
 * order (pixels with d == 0 skipped, taps outside the input absent); the taps inside are
 * found once per pixel, and with dil_w == 1 and x holding just the k trained channels a
 * kernel row's valid taps are one contiguous span of x and of gw. */
static void grad_weight_channel(const tt_conv_shape *s, const tt_channels *ch, const float *x,
                                const float *grad_y, int32_t o, float *gw)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, k = ch->k, xc = ch->x_channels;
    const int32_t contiguous = g->dil_w == 1 && xc == k;
    int32_t oh, ow, ky, kx, i, ky0, ky1, kx0, kx1;
    for (oh = 0; oh < out->h; ++oh) {
        const int32_t ih0 = oh * g->stride_h - g->pad_top;
        tt_window_taps(ih0, kh, g->dil_h, in->h, &ky0, &ky1);
        for (ow = 0; ow < out->w; ++ow) {
            const float d = grad_y[(oh * out->w + ow) * out->c + o];
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            if (d == 0.0f) continue;
            tt_window_taps(iw0, kw, g->dil_w, in->w, &kx0, &kx1);
            for (ky = ky0; ky < ky1; ++ky) {
                const float *xrow = x + (ih0 + ky * g->dil_h) * in->w * xc;
                float *grow = gw + ky * kw * k;
                if (contiguous) {   /* gw is the caller's gradient or scratch, never x */
                    const int32_t span = (kx1 - kx0) * k;
                    const float *restrict xp = xrow + (iw0 + kx0) * xc;
                    float *restrict gp = grow + kx0 * k;
                    for (i = 0; i < span; ++i) gp[i] += d * xp[i];
                    continue;
                }
                for (kx = kx0; kx < kx1; ++kx) {
                    const float *xp = xrow + (iw0 + kx * g->dil_w) * xc;
                    float *gp = grow + kx * k;
                    for (i = 0; i < k; ++i) gp[i] += d * xp[i];
                }
            }
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
