/* Half-precision depthwise conv2d for Helium (MVE, Cortex-M55): forward and input gradient
 * with 8 channels in the lanes, in half with fused multiply-adds (vfmaq_f16), no reduction
 * across lanes (the fused weight update is the portable one). tinytrain/ops/f16.py models
 * them bit for bit:
 * forward      acc = bias (half), then fma of x * w over the taps ky, kx inside the input,
 *              then the activation on the half value (`v < 0 -> 0`, relu6 `v > 6 -> 6`).
 * grad input   gather form: acc = fma over ky, kx of gy * w; stored as is, or old + acc (one
 *              half add) when accumulating.
 * update       per block of 8 trained channels (1 with a channel index, or more than 64 taps)
 *              and tap: the half sum over the output pixels (row-major) of gy * x by fma,
 *              then tt_sgd_rule_f16 channel by channel, tap by tap (the portable kernel's
 *              order: what dynamic loss scaling's overflow sees).
 * A last partial 8 channels is predicated. Empty where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static inline float16x8_t act_f16(float16x8_t v, int32_t act)
{
    if (act == 0) return v;
    v = vpselq_f16(vdupq_n_f16(0.0f), v, vcmpgtq_f16(vdupq_n_f16(0.0f), v));   /* 0 > v: false for a NaN (MVE "lt" is true for unordered) */
    if (act == 2) v = vpselq_f16(vdupq_n_f16(6.0f), v, vcmpgtq_n_f16(v, 6.0f));
    return v;
}

#define DW_TAPS 64     /* taps of a window listed on the stack; larger windows: a tap at a time */

static int32_t source(int32_t i, int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_out)
{
    const int32_t num = i + pad - t * dil;
    if (num < 0 || num % stride) return -1;
    return num / stride < n_out ? num / stride : -1;
}

/* Windows of more than DW_TAPS taps: the bounds of every tap checked per channel block. */
static void dw_forward_taps(const tt_f16 *x, const tt_dims *in, const tt_f16 *w,
                                 const tt_f16 *bias, int32_t kh, int32_t kw, const tt_geom *g,
                                 int32_t act, tt_f16 *y, const tt_dims *out)
{
    const int32_t ch = out->c;
    const float16_t *xh = (const float16_t *)x, *wh = (const float16_t *)w;
    float16_t *yh = (float16_t *)y;
    int32_t oh, ow, c, ky, kx;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            for (c = 0; c < ch; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(ch - c));
                float16x8_t acc = bias ? vldrhq_z_f16((const float16_t *)bias + c, p) : vdupq_n_f16(0.0f);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        if (iw < 0 || iw >= in->w) continue;
                        acc = vfmaq_f16(acc, vldrhq_z_f16(xh + (ih * in->w + iw) * in->c + c, p),
                                        vldrhq_z_f16(wh + (ky * kw + kx) * ch + c, p));
                    }
                }
                vstrhq_p_f16(yh + (oh * out->w + ow) * ch + c, act_f16(acc, act), p);
            }
        }
    }
}


static void dw_grad_input_taps(const tt_conv_shape *s, const tt_f16 *grad_y,
                                            const tt_f16 *w, int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = in->c;
    const float16_t *gyh = (const float16_t *)grad_y, *wh = (const float16_t *)w;
    float16_t *gxh = (float16_t *)grad_x;
    int32_t ih, iw, c, ky, kx;
    for (ih = 0; ih < in->h; ++ih) {
        for (iw = 0; iw < in->w; ++iw) {
            for (c = 0; c < ch; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(ch - c));
                float16_t *gx = gxh + (ih * in->w + iw) * ch + c;
                float16x8_t acc = vdupq_n_f16(0.0f);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        if (ow < 0) continue;
                        acc = vfmaq_f16(acc, vldrhq_z_f16(gyh + (oh * out->w + ow) * ch + c, p),
                                        vldrhq_z_f16(wh + (ky * kw + kx) * ch + c, p));
                    }
                }
                if (accumulate) acc = vaddq_f16(vldrhq_z_f16(gx, p), acc);
                vstrhq_p_f16(gx, acc, p);
            }
        }
    }
}


void tt_depthwise_conv2d_f16_mve(const tt_f16 *x, const tt_dims *in, const tt_f16 *w,
                                 const tt_f16 *bias, int32_t kh, int32_t kw, const tt_geom *g,
                                 int32_t act, tt_f16 *y, const tt_dims *out)
{
    const int32_t ch = out->c;
    const float16_t *xh = (const float16_t *)x, *wh = (const float16_t *)w;
    float16_t *yh = (float16_t *)y;
    int32_t xo[DW_TAPS], wo[DW_TAPS];        /* the valid taps of the pixel: x and w offsets */
    int32_t oh, ow, c, ky, kx, t, nt;
    if (kh * kw > DW_TAPS) {
        dw_forward_taps(x, in, w, bias, kh, kw, g, act, y, out);
        return;
    }
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            nt = 0;                              /* in (ky, kx) order: the order of the sums */
            for (ky = 0; ky < kh; ++ky) {
                const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                if (ih < 0 || ih >= in->h) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                    if (iw < 0 || iw >= in->w) continue;
                    xo[nt] = (ih * in->w + iw) * in->c;
                    wo[nt++] = (ky * kw + kx) * ch;
                }
            }
            for (c = 0; c < ch; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(ch - c));
                float16x8_t acc = bias ? vldrhq_z_f16((const float16_t *)bias + c, p) : vdupq_n_f16(0.0f);
                for (t = 0; t < nt; ++t)
                    acc = vfmaq_f16(acc, vldrhq_z_f16(xh + xo[t] + c, p), vldrhq_z_f16(wh + wo[t] + c, p));
                vstrhq_p_f16(yh + (oh * out->w + ow) * ch + c, act_f16(acc, act), p);
            }
        }
    }
}


void tt_depthwise_conv2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y,
                                            const tt_f16 *w, int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = in->c;
    const float16_t *gyh = (const float16_t *)grad_y, *wh = (const float16_t *)w;
    float16_t *gxh = (float16_t *)grad_x;
    int32_t yo[DW_TAPS], wo[DW_TAPS];        /* the taps reaching the input: gy and w offsets */
    int32_t ih, iw, c, ky, kx, t, nt;
    if (kh * kw > DW_TAPS) {
        dw_grad_input_taps(s, grad_y, w, accumulate, grad_x);
        return;
    }
    for (ih = 0; ih < in->h; ++ih) {
        for (iw = 0; iw < in->w; ++iw) {
            nt = 0;                              /* in (ky, kx) order: the order of the sums */
            for (ky = 0; ky < kh; ++ky) {
                const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                if (oh < 0) continue;
                for (kx = 0; kx < kw; ++kx) {
                    const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                    if (ow < 0) continue;
                    yo[nt] = (oh * out->w + ow) * ch;
                    wo[nt++] = (ky * kw + kx) * ch;
                }
            }
            for (c = 0; c < ch; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(ch - c));
                float16_t *gx = gxh + (ih * in->w + iw) * ch + c;
                float16x8_t acc = vdupq_n_f16(0.0f);
                for (t = 0; t < nt; ++t)
                    acc = vfmaq_f16(acc, vldrhq_z_f16(gyh + yo[t] + c, p), vldrhq_z_f16(wh + wo[t] + c, p));
                if (accumulate) acc = vaddq_f16(vldrhq_z_f16(gx, p), acc);
                vstrhq_p_f16(gx, acc, p);
            }
        }
    }
}

/* [lo, hi): the outputs o along one axis whose tap t lies inside the input. */
static inline void tap_range(int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_in, int32_t n_out,
                             int32_t *lo, int32_t *hi)
{
    const int32_t off = t * dil - pad;              /* input = o * stride + off */
    int32_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int32_t b = n_in - off <= 0 ? 0 : (n_in - off + stride - 1) / stride;
    *lo = a;
    *hi = b < n_out ? b : n_out;
}

#define DW_BUF 512      /* halves on the stack: the gradients of 8 channels over up to 64 taps */

void tt_depthwise_conv2d_update_weight_f16_mve(const tt_conv_shape *s, const tt_channels *ch,
                                               tt_f16 *w, const tt_f16 *x, const tt_f16 *grad_y,
                                               const tt_update *u, float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels, oc = out->c;
    const int32_t step = (ch->index || spatial * 8 > DW_BUF) ? 1 : 8;
    const float16_t *xh = (const float16_t *)x, *gyh = (const float16_t *)grad_y;
    float16_t buf[DW_BUF];
    float16_t *gw = step == 8 ? buf : (float16_t *)scratch;     /* step 1: spatial halves */
    int32_t j, l, p, ky, kx, oh, ow;
    for (j = 0; j < k; j += step) {
        const int32_t n = k - j < step ? k - j : step, c = ch->index ? ch->index[j] : j;
        const mve_pred16_t pr = vctp16q((uint32_t)n);
        for (ky = 0; ky < kh; ++ky) {
            int32_t oh0, oh1;
            tap_range(ky, g->stride_h, g->pad_top, g->dil_h, in->h, out->h, &oh0, &oh1);
            for (kx = 0; kx < kw; ++kx) {
                int32_t ow0, ow1;
                float16x8_t acc = vdupq_n_f16(0.0f);
                tap_range(kx, g->stride_w, g->pad_left, g->dil_w, in->w, out->w, &ow0, &ow1);
                for (oh = oh0; oh < oh1; ++oh) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    const float16_t *xp = xh + (ih * in->w + ow0 * g->stride_w - g->pad_left + kx * g->dil_w) * xc + j;
                    const float16_t *gp = gyh + (oh * out->w + ow0) * oc + c;
                    for (ow = ow1 - ow0; ow > 0; --ow, xp += g->stride_w * xc, gp += oc)
                        acc = vfmaq_m_f16(acc, vldrhq_z_f16(gp, pr), vldrhq_z_f16(xp, pr), pr);
                }
                vstrhq_p_f16(gw + (ky * kw + kx) * step, acc, pr);
            }
        }
        for (l = 0; l < n; ++l) {
            const int32_t cl = ch->index ? ch->index[j + l] : j + l;
            for (p = 0; p < spatial; ++p) {
                tt_f16 *wp = w + p * ch->in_channels + cl;
                *wp = tt_sgd_rule_f16(*wp, (float)gw[p * step + l], &hp, u, p * k + j + l);
            }
        }
    }
}
#endif
