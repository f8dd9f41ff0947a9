/* Half-precision conv2d for Helium (MVE, Cortex-M55): forward, input gradient and the fused
 * weight update, computing in half with fused multiply-adds (vfmaq_f16: one rounding per
 * multiply-add) in 8 lanes. tinytrain/ops/f16.py (`conv2d_mve`, ...) models them bit for bit:
 *
 * forward      per output, 8 half lane accumulators; for each kernel row ky (taps outside the
 *              input skipped) the run of contiguous inputs x[ih][iw0+kx0 .. iw0+kx1-1][0..cin)
 *              (dilation 1; else one run per tap) and the matching weights, 8 at a time,
 *              element e of a run into lane e % 8 (the run's last partial 8 predicated: the
 *              other lanes keep their value); then bias + lane 0 + ... + lane 7 in float32,
 *              the activation, one rounding to half.
 * grad input   gather form, 8 input channels in the lanes: acc(i..i+7) = fma over ky, kx, o
 *              (in that order) of gy[oh][ow][o] * w[o][ky][kx][i..i+7]; stored as is, or
 *              old + acc (one half add) when accumulating.
 * update       per output channel o, tap (ky, kx) and 8 trained channels: the half sum over
 *              the output pixels (row-major) of gy[oh][ow][o] * x[ih][iw][j..j+7] by fma,
 *              kept in the scratch as halves, then tt_sgd_rule_f16 per element.
 * Empty where __ARM_FEATURE_MVE is not defined (the board's reference kernels run instead). */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static inline float16x8_t fma_run(float16x8_t acc, const tt_f16 *x, const tt_f16 *w, int32_t n)
{
    const float16_t *xp = (const float16_t *)x, *wp = (const float16_t *)w;
    while (n > 0) {
        const mve_pred16_t p = vctp16q((uint32_t)n);
        acc = vfmaq_m_f16(acc, vldrhq_z_f16(xp, p), vldrhq_z_f16(wp, p), p);
        xp += 8;
        wp += 8;
        n -= 8;
    }
    return acc;
}

static inline float lanes_sum(float s, float16x8_t acc)
{
    s += (float)vgetq_lane_f16(acc, 0);
    s += (float)vgetq_lane_f16(acc, 1);
    s += (float)vgetq_lane_f16(acc, 2);
    s += (float)vgetq_lane_f16(acc, 3);
    s += (float)vgetq_lane_f16(acc, 4);
    s += (float)vgetq_lane_f16(acc, 5);
    s += (float)vgetq_lane_f16(acc, 6);
    s += (float)vgetq_lane_f16(acc, 7);
    return s;
}

void tt_conv2d_f16_mve(const tt_f16 *x, const tt_dims *in, const tt_f16 *w, const tt_f16 *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, tt_f16 *y,
                       const tt_dims *out)
{
    const int32_t cin = in->c;
    int32_t oh, ow, o, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        const int32_t ih0 = oh * g->stride_h - g->pad_top;
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            int32_t kx0 = 0, kx1 = kw;
            tt_f16 *yp = y + (oh * out->w + ow) * out->c;
            if (g->dil_w == 1) {           /* the valid taps of a row: one contiguous run */
                if (iw0 < 0) kx0 = -iw0;
                if (iw0 + kw > in->w) kx1 = in->w - iw0;
            }
            for (o = 0; o < out->c; ++o) {
                float16x8_t acc = vdupq_n_f16(0.0f);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = ih0 + ky * g->dil_h;
                    const tt_f16 *xr, *wr;
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
                yp[o] = tt_f2h(tt_act_f16(lanes_sum(bias ? tt_h2f(bias[o]) : 0.0f, acc), act));
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

void tt_conv2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y, const tt_f16 *w,
                                  int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, wstride = kh * kw * cin;
    int32_t ih, iw, i, ky, kx, o;
    for (ih = 0; ih < in->h; ++ih) {
        for (iw = 0; iw < in->w; ++iw) {
            float16_t *gx = (float16_t *)(grad_x + (ih * in->w + iw) * cin);
            for (i = 0; i < cin; i += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(cin - i));
                float16x8_t acc = vdupq_n_f16(0.0f);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        const float16_t *gy, *wp;
                        if (ow < 0) continue;
                        gy = (const float16_t *)(grad_y + (oh * out->w + ow) * out->c);
                        wp = (const float16_t *)(w + (ky * kw + kx) * cin + i);
                        for (o = 0; o < out->c; ++o) {
                            acc = vfmaq_n_f16(acc, vldrhq_z_f16(wp + o * wstride, p), gy[o]);
                        }
                    }
                }
                if (accumulate) acc = vaddq_f16(vldrhq_z_f16(gx + i, p), acc);
                vstrhq_p_f16(gx + i, acc, p);
            }
        }
    }
}

void tt_conv2d_update_weight_f16_mve(const tt_conv_shape *s, const tt_channels *ch, tt_f16 *w,
                                     const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u,
                                     float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t per_out = spatial * k;
    float16_t *gw = (float16_t *)scratch;       /* per_out halves: the channel's gradient */
    const float16_t *gyh = (const float16_t *)grad_y, *xh = (const float16_t *)x;
    int32_t o, oh, ow, ky, kx, p, j;
    for (o = 0; o < out->c; ++o) {
        for (ky = 0; ky < kh; ++ky) {
            for (kx = 0; kx < kw; ++kx) {
                for (j = 0; j < k; j += 8) {
                    const mve_pred16_t pr = vctp16q((uint32_t)(k - j));
                    float16x8_t acc = vdupq_n_f16(0.0f);
                    for (oh = 0; oh < out->h; ++oh) {
                        const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                        if (ih < 0 || ih >= in->h) continue;
                        for (ow = 0; ow < out->w; ++ow) {
                            const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                            if (iw < 0 || iw >= in->w) continue;
                            acc = vfmaq_n_f16(acc, vldrhq_z_f16(xh + (ih * in->w + iw) * xc + j, pr),
                                              gyh[(oh * out->w + ow) * out->c + o]);
                        }
                    }
                    vstrhq_p_f16(gw + (ky * kw + kx) * k + j, acc, pr);
                }
            }
        }
        for (p = 0; p < spatial; ++p) {
            tt_f16 *wr = w + (o * spatial + p) * ch->in_channels;
            for (j = 0; j < k; ++j) {
                tt_f16 *wq = wr + (ch->index ? ch->index[j] : j);
                *wq = tt_sgd_rule_f16(*wq, (float)gw[p * k + j], &hp, u, o * per_out + p * k + j);
            }
        }
    }
}
#endif
