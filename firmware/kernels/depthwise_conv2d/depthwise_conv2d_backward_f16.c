/* Half-precision depthwise conv2d backward (portable): the input gradient in gather form
 * (taps in ky, kx order, float32, one rounding) and the fused weight update (per trained
 * channel, the float32 gradient of its kh x kw weights summed over the output pixels in
 * row-major order, then tt_sgd_rule_f16). */
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

static int32_t source(int32_t i, int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_out)
{
    const int32_t num = i + pad - t * dil;
    if (num < 0 || num % stride) return -1;
    return num / stride < n_out ? num / stride : -1;
}

void tt_depthwise_conv2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *grad_y,
                                        const tt_f16 *w, int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = in->c;
    int32_t ih, iw, c, ky, kx;
    for (ih = 0; ih < in->h; ++ih) {
        for (iw = 0; iw < in->w; ++iw) {
            tt_f16 *gx = grad_x + (ih * in->w + iw) * ch;
            for (c = 0; c < ch; ++c) {
                float acc = 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        if (ow < 0) continue;
                        acc += tt_h2f(grad_y[(oh * out->w + ow) * ch + c]) * tt_h2f(w[(ky * kw + kx) * ch + c]);
                    }
                }
                gx[c] = tt_f2h(accumulate ? tt_h2f(gx[c]) + acc : acc);
            }
        }
    }
}

void tt_depthwise_conv2d_update_weight_f16(const tt_conv_shape *s, const tt_channels *ch,
                                           tt_f16 *w, const tt_f16 *x, const tt_f16 *grad_y,
                                           const tt_update *u, float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    int32_t j, p, oh, ow, ky, kx;
    for (j = 0; j < k; ++j) {
        const int32_t c = ch->index ? ch->index[j] : j;
        for (p = 0; p < spatial; ++p) scratch[p] = 0.0f;
        for (oh = 0; oh < out->h; ++oh) {
            for (ow = 0; ow < out->w; ++ow) {
                const float d = tt_h2f(grad_y[(oh * out->w + ow) * out->c + c]);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        if (iw < 0 || iw >= in->w) continue;
                        scratch[ky * kw + kx] += d * tt_h2f(x[(ih * in->w + iw) * xc + j]);
                    }
                }
            }
        }
        for (p = 0; p < spatial; ++p) {
            tt_f16 *wp = w + p * ch->in_channels + c;
            *wp = tt_sgd_rule_f16(*wp, scratch[p], &hp, u, p * k + j);
        }
    }
}
