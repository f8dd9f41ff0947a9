/* Float32 conv2d backward: input gradient (transposed conv), weight gradient over the
 * first k_in input channels, bias gradient, and the fused per-channel weight update. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_conv2d_grad_input_f32(const float *grad_y, const tt_dims *out,
                              const float *w, int32_t kh, int32_t kw, const tt_geom *g,
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

/* Gradient of output channel o's weights, (kh, kw, k_in), added into gw. */
static void grad_weight_channel(const float *x, const tt_dims *in,
                                const float *grad_y, const tt_dims *out,
                                int32_t kh, int32_t kw, const tt_geom *g, int32_t k_in,
                                int32_t o, float *gw)
{
    int32_t oh, ow, ky, kx, i;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float d = grad_y[(oh * out->w + ow) * out->c + o];
            if (d == 0.0f) continue;
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    const float *xp;
                    float *gp;
                    if (iw < 0 || iw >= in->w) continue;
                    xp = x + (ih * in->w + iw) * in->c;
                    gp = gw + (ky * kw + kx) * k_in;
                    for (i = 0; i < k_in; ++i) gp[i] += d * xp[i];
                }
            }
        }
    }
}

void tt_conv2d_grad_weight_f32(const float *x, const tt_dims *in,
                               const float *grad_y, const tt_dims *out,
                               int32_t kh, int32_t kw, const tt_geom *g, int32_t k_in,
                               int32_t accumulate, float *grad_w)
{
    const int32_t per_out = kh * kw * k_in;
    int32_t o;
    tt_zero_unless_f32(grad_w, out->c * per_out, accumulate);
    for (o = 0; o < out->c; ++o) {
        grad_weight_channel(x, in, grad_y, out, kh, kw, g, k_in, o, grad_w + o * per_out);
    }
}

void tt_conv2d_grad_bias_f32(const float *grad_y, const tt_dims *out,
                             int32_t accumulate, float *grad_b)
{
    const int32_t pixels = out->h * out->w;
    int32_t p, c;
    tt_zero_unless_f32(grad_b, out->c, accumulate);
    for (p = 0; p < pixels; ++p) {
        for (c = 0; c < out->c; ++c) grad_b[c] += grad_y[p * out->c + c];
    }
}

void tt_conv2d_update_weight_f32(float *w, int32_t in_channels,
                                 const float *x, const tt_dims *in,
                                 const float *grad_y, const tt_dims *out,
                                 int32_t kh, int32_t kw, const tt_geom *g,
                                 int32_t k_in, const int32_t *ch_index,
                                 float lr, float momentum, float weight_decay,
                                 float *m_buf, float *scratch)
{
    const int32_t spatial = kh * kw, per_out = spatial * k_in;
    int32_t o, s, j;
    for (o = 0; o < out->c; ++o) {
        tt_zero_unless_f32(scratch, per_out, 0);
        grad_weight_channel(x, in, grad_y, out, kh, kw, g, k_in, o, scratch);
        for (s = 0; s < spatial; ++s) {
            float *wr = w + (o * spatial + s) * in_channels;
            for (j = 0; j < k_in; ++j) {
                const int32_t e = s * k_in + j;
                float *m = m_buf ? m_buf + o * per_out + e : NULL;
                float *wp = wr + (ch_index ? ch_index[j] : j);
                *wp = tt_sgd_rule(*wp, scratch[e], lr, momentum, weight_decay, m);
            }
        }
    }
}
