/* Float32 conv2d for Helium (MVE, Cortex-M55): forward, input gradient and fused weight
 * update with vfmaq_f32 in 4 lanes, the same loop structure as the half-precision variants
 * (conv2d_f16_mve.c). The FP32 Helium baseline of bench/bench_fp16.py: no op unit asks for
 * it, since a float32 training build must equal its host build (unfused, -ffp-contract=off),
 * which these fused multiply-adds do not. Empty where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static inline float32x4_t fma_run(float32x4_t acc, const float *x, const float *w, int32_t n)
{
    while (n > 0) {
        const mve_pred16_t p = vctp32q((uint32_t)n);
        acc = vfmaq_m_f32(acc, vldrwq_z_f32(x, p), vldrwq_z_f32(w, p), p);
        x += 4;
        w += 4;
        n -= 4;
    }
    return acc;
}

void tt_conv2d_f32_mve(const float *x, const tt_dims *in, const float *w, const float *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, float *y,
                       const tt_dims *out)
{
    const int32_t cin = in->c;
    int32_t oh, ow, o, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        const int32_t ih0 = oh * g->stride_h - g->pad_top;
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            int32_t kx0 = 0, kx1 = kw;
            float *yp = y + (oh * out->w + ow) * out->c;
            if (g->dil_w == 1) {
                if (iw0 < 0) kx0 = -iw0;
                if (iw0 + kw > in->w) kx1 = in->w - iw0;
            }
            for (o = 0; o < out->c; ++o) {
                float32x4_t acc = vdupq_n_f32(0.0f);
                float s;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = ih0 + ky * g->dil_h;
                    const float *xr, *wr;
                    if (ih < 0 || ih >= in->h) continue;
                    xr = x + ih * in->w * cin;
                    wr = w + (o * kh + ky) * kw * cin;
                    if (g->dil_w == 1) {
                        if (kx1 > kx0) acc = fma_run(acc, xr + (iw0 + kx0) * cin, wr + kx0 * cin, (kx1 - kx0) * cin);
                        continue;
                    }
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = iw0 + kx * g->dil_w;
                        if (iw < 0 || iw >= in->w) continue;
                        acc = fma_run(acc, xr + iw * cin, wr + kx * cin, cin);
                    }
                }
                s = bias ? bias[o] : 0.0f;
                s += vgetq_lane_f32(acc, 0);
                s += vgetq_lane_f32(acc, 1);
                s += vgetq_lane_f32(acc, 2);
                s += vgetq_lane_f32(acc, 3);
                if (act && s < 0.0f) s = 0.0f;
                if (act == 2 && s > 6.0f) s = 6.0f;
                yp[o] = s;
            }
        }
    }
}

static int32_t source(int32_t i, int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_out)
{
    const int32_t num = i + pad - t * dil;
    if (num < 0 || num % stride) return -1;
    return num / stride < n_out ? num / stride : -1;
}

void tt_conv2d_grad_input_f32_mve(const tt_conv_shape *s, const float *grad_y, const float *w,
                                  int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, wstride = kh * kw * cin;
    int32_t ih, iw, i, ky, kx, o;
    for (ih = 0; ih < in->h; ++ih) {
        for (iw = 0; iw < in->w; ++iw) {
            float *gx = grad_x + (ih * in->w + iw) * cin;
            for (i = 0; i < cin; i += 4) {
                const mve_pred16_t p = vctp32q((uint32_t)(cin - i));
                float32x4_t acc = vdupq_n_f32(0.0f);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        const float *gy, *wp;
                        if (ow < 0) continue;
                        gy = grad_y + (oh * out->w + ow) * out->c;
                        wp = w + (ky * kw + kx) * cin + i;
                        for (o = 0; o < out->c; ++o) acc = vfmaq_n_f32(acc, vldrwq_z_f32(wp + o * wstride, p), gy[o]);
                    }
                }
                if (accumulate) acc = vaddq_f32(vldrwq_z_f32(gx + i, p), acc);
                vstrwq_p_f32(gx + i, acc, p);
            }
        }
    }
}

void tt_conv2d_update_weight_f32_mve(const tt_conv_shape *s, const tt_channels *ch, float *w,
                                     const float *x, const float *grad_y, const tt_update *u,
                                     float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t per_out = spatial * k;
    int32_t o, oh, ow, ky, kx, p, j;
    for (o = 0; o < out->c; ++o) {
        for (ky = 0; ky < kh; ++ky) {
            for (kx = 0; kx < kw; ++kx) {
                for (j = 0; j < k; j += 4) {
                    const mve_pred16_t pr = vctp32q((uint32_t)(k - j));
                    float32x4_t acc = vdupq_n_f32(0.0f);
                    for (oh = 0; oh < out->h; ++oh) {
                        const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                        if (ih < 0 || ih >= in->h) continue;
                        for (ow = 0; ow < out->w; ++ow) {
                            const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                            if (iw < 0 || iw >= in->w) continue;
                            acc = vfmaq_n_f32(acc, vldrwq_z_f32(x + (ih * in->w + iw) * xc + j, pr),
                                              grad_y[(oh * out->w + ow) * out->c + o]);
                        }
                    }
                    vstrwq_p_f32(scratch + (ky * kw + kx) * k + j, acc, pr);
                }
            }
        }
        for (p = 0; p < spatial; ++p) {
            float *wr = w + (o * spatial + p) * ch->in_channels;
            for (j = 0; j < k; ++j) {
                float *wq = wr + (ch->index ? ch->index[j] : j);
                *wq = tt_sgd_rule(*wq, scratch[p * k + j], &hp, u, o * per_out + p * k + j);
            }
        }
    }
}
#endif
