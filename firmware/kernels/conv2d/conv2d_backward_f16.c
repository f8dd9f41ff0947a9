/* Half-precision conv2d backward (portable): the input gradient in gather form (each input
 * element sums its taps in ky, kx, output-channel order, in float32, rounded to half once)
 * and the fused weight update (per output channel a float32 gradient in scratch, summed
 * over the output pixels in row-major order, then tt_sgd_rule_f16). */
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

/* The output index that reaches input index i through tap t along one axis, or -1. */
static int32_t source(int32_t i, int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_out)
{
    const int32_t num = i + pad - t * dil;
    if (num < 0 || num % stride) return -1;
    return num / stride < n_out ? num / stride : -1;
}

void tt_conv2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *grad_y, const tt_f16 *w,
                              int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, wstride = kh * kw * in->c;
    int32_t ih, iw, i, ky, kx, o;
    for (ih = 0; ih < in->h; ++ih) {
        for (iw = 0; iw < in->w; ++iw) {
            tt_f16 *gx = grad_x + (ih * in->w + iw) * cin;
            for (i = 0; i < cin; ++i) {
                float acc = 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        const tt_f16 *gy, *wp;
                        if (ow < 0) continue;
                        gy = grad_y + (oh * out->w + ow) * out->c;
                        wp = w + (ky * kw + kx) * cin + i;
                        for (o = 0; o < out->c; ++o) acc += tt_h2f(gy[o]) * tt_h2f(wp[o * wstride]);
                    }
                }
                gx[i] = tt_f2h(accumulate ? tt_h2f(gx[i]) + acc : acc);
            }
        }
    }
}

void tt_conv2d_update_weight_f16(const tt_conv_shape *s, const tt_channels *ch, tt_f16 *w,
                                 const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u,
                                 float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t per_out = spatial * k;
    int32_t o, oh, ow, ky, kx, p, j;
    for (o = 0; o < out->c; ++o) {
        for (j = 0; j < per_out; ++j) scratch[j] = 0.0f;
        for (oh = 0; oh < out->h; ++oh) {
            for (ow = 0; ow < out->w; ++ow) {
                const float d = tt_h2f(grad_y[(oh * out->w + ow) * out->c + o]);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        const tt_f16 *xp;
                        float *gp;
                        if (iw < 0 || iw >= in->w) continue;
                        xp = x + (ih * in->w + iw) * xc;
                        gp = scratch + (ky * kw + kx) * k;
                        for (j = 0; j < k; ++j) gp[j] += d * tt_h2f(xp[j]);
                    }
                }
            }
        }
        for (p = 0; p < spatial; ++p) {
            tt_f16 *wr = w + (o * spatial + p) * ch->in_channels;
            for (j = 0; j < k; ++j) {
                tt_f16 *wp = wr + (ch->index ? ch->index[j] : j);
                *wp = tt_sgd_rule_f16(*wp, scratch[p * k + j], &hp, u, o * per_out + p * k + j);
            }
        }
    }
}
