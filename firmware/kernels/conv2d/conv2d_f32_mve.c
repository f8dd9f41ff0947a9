/* Float32 conv2d for Helium (MVE, Cortex-M55): forward, input gradient and fused weight
 * update with vfmaq_f32, generated from conv2d_f16_mve.c's loops (4 float lanes instead of 8
 * half ones: 16 channels in the four accumulators instead of 32). The FP32 Helium baseline of
 * bench/bench_fp16.py: no op unit asks for it, since a float32 training build must equal its
 * host build (unfused, -ffp-contract=off), which fused multiply-adds do not. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static inline float32x4_t fma_run(float32x4_t acc, const float *xp, const float *wp, int32_t n)
{
    for (; n >= 4; n -= 4, xp += 4, wp += 4) acc = vfmaq_f32(acc, vld1q_f32(xp), vld1q_f32(wp));
    if (n > 0) {
        const mve_pred16_t p = vctp32q((uint32_t)n);
        acc = vfmaq_m_f32(acc, vldrwq_z_f32(xp, p), vldrwq_z_f32(wp, p), p);
    }
    return acc;
}

static inline float lanes_sum(float s, float32x4_t acc)
{
    s += vgetq_lane_f32(acc, 0);
    s += vgetq_lane_f32(acc, 1);
    s += vgetq_lane_f32(acc, 2);
    s += vgetq_lane_f32(acc, 3);
    return s;
}

/* Output (oh, ow), channels o .. o+3: four accumulators share each load of x. */
static void four_outputs(const float *x, const tt_dims *in, const float *w, int32_t kh, int32_t kw,
                         const tt_geom *g, int32_t ih0, int32_t iw0, int32_t kx0, int32_t kx1, int32_t o,
                         const float *bias, int32_t act, float *yp)
{
    const int32_t cin = in->c, ws = kh * kw * cin;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int32_t ky, kx, t;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t ih = ih0 + ky * g->dil_h;
        if (ih < 0 || ih >= in->h) continue;
        for (kx = kx0; kx < kx1; ++kx) {
            const int32_t iw = iw0 + kx * g->dil_w;
            const float *xp, *w0, *w1, *w2, *w3;
            int32_t n;
            if (g->dil_w == 1) {
                n = (kx1 - kx0) * cin;
                kx = kx1;
            } else {
                if (iw < 0 || iw >= in->w) continue;
                n = cin;
            }
            xp = x + (ih * in->w + iw) * cin;
            w0 = w + ((o * kh + ky) * kw + (g->dil_w == 1 ? kx0 : kx)) * cin;
            w1 = w0 + ws;
            w2 = w1 + ws;
            w3 = w2 + ws;
            for (t = n >> 2; t > 0; --t) {
                const float32x4_t xv = vld1q_f32(xp);
                a0 = vfmaq_f32(a0, xv, vld1q_f32(w0));
                a1 = vfmaq_f32(a1, xv, vld1q_f32(w1));
                a2 = vfmaq_f32(a2, xv, vld1q_f32(w2));
                a3 = vfmaq_f32(a3, xv, vld1q_f32(w3));
                xp += 4;
                w0 += 4;
                w1 += 4;
                w2 += 4;
                w3 += 4;
            }
            if (n & 3) {
                const mve_pred16_t p = vctp32q((uint32_t)(n & 3));
                const float32x4_t xv = vldrwq_z_f32(xp, p);
                a0 = vfmaq_m_f32(a0, xv, vldrwq_z_f32(w0, p), p);
                a1 = vfmaq_m_f32(a1, xv, vldrwq_z_f32(w1, p), p);
                a2 = vfmaq_m_f32(a2, xv, vldrwq_z_f32(w2, p), p);
                a3 = vfmaq_m_f32(a3, xv, vldrwq_z_f32(w3, p), p);
            }
        }
    }
    yp[o] = tt_act_f32(lanes_sum(bias ? bias[o] : 0.0f, a0), act);
    yp[o + 1] = tt_act_f32(lanes_sum(bias ? bias[o + 1] : 0.0f, a1), act);
    yp[o + 2] = tt_act_f32(lanes_sum(bias ? bias[o + 2] : 0.0f, a2), act);
    yp[o + 3] = tt_act_f32(lanes_sum(bias ? bias[o + 3] : 0.0f, a3), act);
}

static void one_output(const float *x, const tt_dims *in, const float *w, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t ih0, int32_t iw0, int32_t kx0, int32_t kx1, int32_t o,
                       const float *bias, int32_t act, float *yp)
{
    const int32_t cin = in->c;
    float32x4_t acc = vdupq_n_f32(0.0f);
    int32_t ky, kx;
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
    yp[o] = tt_act_f32(lanes_sum(bias ? bias[o] : 0.0f, acc), act);
}

void tt_conv2d_f32_mve(const float *x, const tt_dims *in, const float *w, const float *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, float *y,
                       const tt_dims *out)
{
    int32_t oh, ow, o;
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
            for (o = 0; o + 3 < out->c; o += 4) four_outputs(x, in, w, kh, kw, g, ih0, iw0, kx0, kx1, o, bias, act, yp);
            for (; o < out->c; ++o) one_output(x, in, w, kh, kw, g, ih0, iw0, kx0, kx1, o, bias, act, yp);
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
            for (i = 0; i < cin; i += 16) {        /* 16 channels in four accumulators */
                const int32_t left = cin - i;
                const mve_pred16_t p0 = vctp32q((uint32_t)left);
                const mve_pred16_t p1 = vctp32q((uint32_t)(left > 4 ? left - 4 : 0));
                const mve_pred16_t p2 = vctp32q((uint32_t)(left > 8 ? left - 8 : 0));
                const mve_pred16_t p3 = vctp32q((uint32_t)(left > 12 ? left - 12 : 0));
                float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        const float *gy, *wp;
                        if (ow < 0) continue;
                        gy = grad_y + (oh * out->w + ow) * out->c;
                        wp = w + (ky * kw + kx) * cin + i;
                        if (left >= 16) {
                            for (o = 0; o < out->c; ++o, wp += wstride) {
                                const float d = gy[o];
                                a0 = vfmaq_n_f32(a0, vld1q_f32(wp), d);
                                a1 = vfmaq_n_f32(a1, vld1q_f32(wp + 4), d);
                                a2 = vfmaq_n_f32(a2, vld1q_f32(wp + 8), d);
                                a3 = vfmaq_n_f32(a3, vld1q_f32(wp + 12), d);
                            }
                            continue;
                        }
                        for (o = 0; o < out->c; ++o, wp += wstride) {
                            const float d = gy[o];
                            a0 = vfmaq_n_f32(a0, vldrwq_z_f32(wp, p0), d);
                            if (left > 4) a1 = vfmaq_n_f32(a1, vldrwq_z_f32(wp + 4, p1), d);
                            if (left > 8) a2 = vfmaq_n_f32(a2, vldrwq_z_f32(wp + 8, p2), d);
                            if (left > 12) a3 = vfmaq_n_f32(a3, vldrwq_z_f32(wp + 12, p3), d);
                        }
                    }
                }
                if (accumulate) {
                    a0 = vaddq_f32(vldrwq_z_f32(gx + i, p0), a0);
                    a1 = vaddq_f32(vldrwq_z_f32(gx + i + 4, p1), a1);
                    a2 = vaddq_f32(vldrwq_z_f32(gx + i + 8, p2), a2);
                    a3 = vaddq_f32(vldrwq_z_f32(gx + i + 12, p3), a3);
                }
                vstrwq_p_f32(gx + i, a0, p0);
                vstrwq_p_f32(gx + i + 4, a1, p1);
                vstrwq_p_f32(gx + i + 8, a2, p2);
                vstrwq_p_f32(gx + i + 12, a3, p3);
            }
        }
    }
}

/* tt_sgd_rule on n contiguous elements, 4 at a time in float32 vectors (the same
 * operations, each rounded once: the same bits); the last n % 4 through the scalar rule. */
static void sgd_block(float *w, const float *gw, int32_t n, const tt_hparams *hp, const tt_update *u, int32_t e0)
{
    const float lr = hp->lr, wd = hp->weight_decay, mu = hp->momentum;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t wv = vld1q_f32(w + i);
        float32x4_t g = vaddq_f32(vld1q_f32(gw + i), vmulq_n_f32(wv, wd));
        if (u->momentum) {
            float32x4_t m = vaddq_f32(vmulq_n_f32(vld1q_f32(u->momentum + e0 + i), mu), g);
            vst1q_f32(u->momentum + e0 + i, m);
            g = m;
        }
        vst1q_f32(w + i, vsubq_f32(wv, vmulq_n_f32(g, lr)));
    }
    for (; i < n; ++i) w[i] = tt_sgd_rule(w[i], gw[i], hp, u, e0 + i);
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

void tt_conv2d_update_weight_f32_mve(const tt_conv_shape *s, const tt_channels *ch, float *w,
                                     const float *x, const float *grad_y, const tt_update *u,
                                     float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t per_out = spatial * k, oc = out->c;
    float *gw = scratch;                 /* the channel's gradient */
    const float *gyh = grad_y, *xh = x;
    int32_t o, oh, ow, ky, kx, p, j;
    for (o = 0; o < oc; ++o) {
        for (ky = 0; ky < kh; ++ky) {
            int32_t oh0, oh1;
            tap_range(ky, g->stride_h, g->pad_top, g->dil_h, in->h, out->h, &oh0, &oh1);
            for (kx = 0; kx < kw; ++kx) {
                int32_t ow0, ow1;
                tap_range(kx, g->stride_w, g->pad_left, g->dil_w, in->w, out->w, &ow0, &ow1);
                for (j = 0; j < k; j += 16) {      /* 16 channels in four accumulators */
                    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
                    float *dst = gw + (ky * kw + kx) * k + j;
                    const int32_t left = k - j;
                    const mve_pred16_t p0 = vctp32q((uint32_t)left);
                    const mve_pred16_t p1 = vctp32q((uint32_t)(left > 4 ? left - 4 : 0));
                    const mve_pred16_t p2 = vctp32q((uint32_t)(left > 8 ? left - 8 : 0));
                    const mve_pred16_t p3 = vctp32q((uint32_t)(left > 12 ? left - 12 : 0));
                    for (oh = oh0; oh < oh1; ++oh) {
                        const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                        const float *gr = gyh + oh * out->w * oc + o;
                        const float *xr = xh + ih * in->w * xc + j;
                        if (left >= 16) {
                            for (ow = ow0; ow < ow1; ++ow) {
                                const float *xp = xr + (ow * g->stride_w - g->pad_left + kx * g->dil_w) * xc;
                                const float d = gr[ow * oc];
                                a0 = vfmaq_n_f32(a0, vld1q_f32(xp), d);
                                a1 = vfmaq_n_f32(a1, vld1q_f32(xp + 4), d);
                                a2 = vfmaq_n_f32(a2, vld1q_f32(xp + 8), d);
                                a3 = vfmaq_n_f32(a3, vld1q_f32(xp + 12), d);
                            }
                            continue;
                        }
                        for (ow = ow0; ow < ow1; ++ow) {  /* fewer channels: loads past k read 0 */
                            const float *xp = xr + (ow * g->stride_w - g->pad_left + kx * g->dil_w) * xc;
                            const float d = gr[ow * oc];
                            a0 = vfmaq_n_f32(a0, vldrwq_z_f32(xp, p0), d);
                            if (left > 4) a1 = vfmaq_n_f32(a1, vldrwq_z_f32(xp + 4, p1), d);
                            if (left > 8) a2 = vfmaq_n_f32(a2, vldrwq_z_f32(xp + 8, p2), d);
                            if (left > 12) a3 = vfmaq_n_f32(a3, vldrwq_z_f32(xp + 12, p3), d);
                        }
                    }
                    vstrwq_p_f32(dst, a0, p0);
                    vstrwq_p_f32(dst + 4, a1, p1);
                    vstrwq_p_f32(dst + 8, a2, p2);
                    vstrwq_p_f32(dst + 12, a3, p3);
                }
            }
        }
        if (!ch->index && k == ch->in_channels) {      /* the channel's weights are contiguous */
            sgd_block(w + o * per_out, gw, per_out, &hp, u, o * per_out);
            continue;
        }
        for (p = 0; p < spatial; ++p) {
            float *wr = w + (o * spatial + p) * ch->in_channels;
            for (j = 0; j < k; ++j) {
                float *wq = wr + (ch->index ? ch->index[j] : j);
                *wq = tt_sgd_rule(*wq, gw[p * k + j], &hp, u, o * per_out + p * k + j);
            }
        }
    }
}
#endif
