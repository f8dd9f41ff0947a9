/* Building blocks of the int8 weight-gradient / fused-update variants of conv2d and
 * depthwise_conv2d (firmware/kernels/<op>/<op>_update_s8_dsp.c, _mve.c): the reference
 * kernels' floats and bytes, at a fraction of their instructions. Header only.
 *
 * 1. tt_qas_update_run_s8: tt_qas_rule over a run of elements with the update mode decided
 *    once per run instead of once per element. Stochastic and nearest rounding (the
 *    default modes) take tt_update_fast.h's int32 path wherever |step| < 2^20; the draws of tt_rng_uniform are made from a Weyl counter advanced by one gamma
 *    per element (the same numbers: element e draws hash(state + (e + 1) * gamma)). Any
 *    other step (NaN, huge), and the shadow and residual modes, take tt_qas_rule itself.
 *    The float operations before the rounding (g = grad / s, weight decay, momentum, lr)
 *    are the reference's, one by one (the project builds with -ffp-contract=off).
 * 2. The pixel list: the nonzero d = grad_y * x_scale of an output channel over a chunk of
 *    output pixels (rounded as the reference rounds them), with where each pixel's window
 *    starts. A zero d is left out: the reference skips it as well (and even where it did
 *    not, adding d * x = +-0 to a sum that starts at +0 leaves its bits alone, since such a
 *    sum is never -0).
 * 3. tt_wgrad_rows_scalar: one output channel's weight gradient added into gw, each element
 *    taking the reference's products in the reference's order (output pixels ascending):
 *    eight elements of a tap row kept in float registers over the pixel list. */
#ifndef TT_UPDATE_ROWS_H
#define TT_UPDATE_ROWS_H

#include <stdint.h>
#include "tt_train_kernels.h"
#include "tt_update_rules.h"
#include "tt_update_fast.h"
#include "tt_simd.h"

/* ---- 1. the update rule over a run ------------------------------------------------------ */

/* Update n int8 weights: element t is w[widx ? widx[t] : t * wstride], its gradient grad[t]
 * (real units), its update element e0 + t * estride, its QAS scale s. The roundings are
 * tt_update_fast.h's (the reference's bits without floorf / int64 where |step| < 2^20). */
static inline void tt_qas_update_run_s8(int8_t *w, const int32_t *widx, int32_t wstride, const float *grad,
                                        int32_t n, float s, const tt_hparams *hp, const tt_update *u,
                                        int32_t e0, int32_t estride)
{
    int32_t t, e = e0;
    if (u->mode == TT_UPDATE_STOCHASTIC) {
        const uint32_t gstep = (uint32_t)estride * TT_RNG_GAMMA;
        uint32_t ctr = u->rng->state + ((uint32_t)e0 + 1u) * TT_RNG_GAMMA;
        for (t = 0; t < n; ++t, e += estride, ctr += gstep) {
            int8_t *wp = w + (widx ? widx[t] : t * wstride);
            const int32_t q = *wp;
            const float step = tt_qas_step_of((float)q, grad[t], s, hp->lr, hp->momentum, hp->weight_decay,
                                              u->momentum ? &u->momentum[e] : 0);
            const float r = (float)(tt_rng_hash(ctr) >> 8) * 0x1p-24f;
            *wp = (int8_t)tt_qas_round_stochastic_fast(q, step, r, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    } else if (u->mode == TT_UPDATE_SHADOW || u->mode == TT_UPDATE_RESIDUAL) {
        for (t = 0; t < n; ++t, e += estride) {
            int8_t *wp = w + (widx ? widx[t] : t * wstride);
            *wp = (int8_t)tt_qas_rule(*wp, grad[t], s, hp, u, e, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    } else {   /* nearest (and TT_UPDATE_FLOAT on an integer parameter) */
        for (t = 0; t < n; ++t, e += estride) {
            int8_t *wp = w + (widx ? widx[t] : t * wstride);
            const int32_t q = *wp;
            const float step = tt_qas_step_of((float)q, grad[t], s, hp->lr, hp->momentum, hp->weight_decay,
                                              u->momentum ? &u->momentum[e] : 0);
            *wp = (int8_t)tt_qas_round_exact_fast(q, step, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    }
}

/* ---- 2. the pixel list -------------------------------------------------------------------- */

#define TT_WG_CHUNK 64

typedef struct {
    float d[TT_WG_CHUNK];        /* grad_y * x_scale, nonzero */
    int32_t ih[TT_WG_CHUNK];     /* the window's first input row / column (may be < 0) */
    int32_t iw[TT_WG_CHUNK];
    int32_t n;
} tt_wg_list;

/* Output pixels p0 .. p1-1 of grad_y channel yc: the nonzero ones into l. Returns 0 if one of
 * their d lies outside [2^-103, 2^100] (a subnormal product could arise; see the _mve
 * files) or is not finite, else 1 (the check is only the Helium variants' concern). */
static inline int32_t tt_wg_list_build(tt_wg_list *l, const tt_conv_shape *s, const float *grad_y, int32_t yc,
                                       float x_scale, int32_t p0, int32_t p1)
{
    const int32_t ow_n = s->out->w, cout = s->out->c;
    const tt_geom *g = s->g;
    int32_t p, n = 0, ok = 1;
    for (p = p0; p < p1; ++p) {
        float d = grad_y[p * cout + yc];
        if (d == 0.0f) continue;
        d = d * x_scale;
        if (!(d > 0x1p-103f && d < 0x1p100f) && !(d < -0x1p-103f && d > -0x1p100f)) ok = 0;
        l->d[n] = d;
        l->ih[n] = (p / ow_n) * g->stride_h - g->pad_top;
        l->iw[n] = (p % ow_n) * g->stride_w - g->pad_left;
        n++;
    }
    l->n = n;
    return ok;
}

/* ---- 3. a channel's weight gradient, scalar floats ------------------------------------------ */

/* Add, over the list's pixels in order, d * (x - zp) into gw[i] for i < k, x the row of the
 * window tap (ky, kx) (taps outside the input skipped, as the reference skips them). */
static inline void tt_wgrad_tap_scalar(float *gw, int32_t k, const tt_wg_list *l, const int8_t *x,
                                       const tt_conv_shape *s, int32_t xc, int32_t zp, int32_t ky, int32_t kx)
{
    const int32_t in_h = s->in->h, in_w = s->in->w, dy = ky * s->g->dil_h, dx = kx * s->g->dil_w;
    int32_t i, e;
    for (i = 0; i + 8 <= k; i += 8) {
        float a0 = gw[i], a1 = gw[i + 1], a2 = gw[i + 2], a3 = gw[i + 3];
        float a4 = gw[i + 4], a5 = gw[i + 5], a6 = gw[i + 6], a7 = gw[i + 7];
        for (e = 0; e < l->n; ++e) {
            const int32_t ih = l->ih[e] + dy, iw = l->iw[e] + dx;
            const int8_t *xp;
            int32_t lo, hi;
            float d;
            if ((uint32_t)ih >= (uint32_t)in_h || (uint32_t)iw >= (uint32_t)in_w) continue;
            xp = x + (ih * in_w + iw) * xc + i;
            lo = tt_load_s8x4(xp);
            hi = tt_load_s8x4(xp + 4);
            d = l->d[e];
            a0 += d * (float)((int32_t)(int8_t)lo - zp);
            a1 += d * (float)((int32_t)(int8_t)(lo >> 8) - zp);
            a2 += d * (float)((int32_t)(int8_t)(lo >> 16) - zp);
            a3 += d * (float)((lo >> 24) - zp);
            a4 += d * (float)((int32_t)(int8_t)hi - zp);
            a5 += d * (float)((int32_t)(int8_t)(hi >> 8) - zp);
            a6 += d * (float)((int32_t)(int8_t)(hi >> 16) - zp);
            a7 += d * (float)((hi >> 24) - zp);
        }
        gw[i] = a0; gw[i + 1] = a1; gw[i + 2] = a2; gw[i + 3] = a3;
        gw[i + 4] = a4; gw[i + 5] = a5; gw[i + 6] = a6; gw[i + 7] = a7;
    }
    for (; i < k; ++i) {
        float a = gw[i];
        for (e = 0; e < l->n; ++e) {
            const int32_t ih = l->ih[e] + dy, iw = l->iw[e] + dx;
            if ((uint32_t)ih >= (uint32_t)in_h || (uint32_t)iw >= (uint32_t)in_w) continue;
            a += l->d[e] * (float)((int32_t)x[(ih * in_w + iw) * xc + i] - zp);
        }
        gw[i] = a;
    }
}

/* Output channel o's weight gradient (kh, kw, k) added into gw, in the reference's order. */
static inline void tt_conv2d_wgrad_channel_scalar(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                                  const tt_act_quant *xq, const float *grad_y, int32_t o,
                                                  float *gw)
{
    const int32_t npix = s->out->h * s->out->w, k = ch->k;
    tt_wg_list l;
    int32_t p0, ky, kx;
    for (p0 = 0; p0 < npix; p0 += TT_WG_CHUNK) {
        (void)tt_wg_list_build(&l, s, grad_y, o, xq->scale, p0, npix - p0 < TT_WG_CHUNK ? npix : p0 + TT_WG_CHUNK);
        if (l.n == 0) continue;
        for (ky = 0; ky < s->kh; ++ky)
            for (kx = 0; kx < s->kw; ++kx)
                tt_wgrad_tap_scalar(gw + (ky * s->kw + kx) * k, k, &l, x, s, ch->x_channels, xq->zero_point, ky, kx);
    }
}

/* ---- 4. the fused conv2d update, one output channel at a time ------------------------------ */

/* One output channel's weight gradient into gw (zeroed by the caller): the variant's row. */
typedef void (*tt_wgrad_channel_fn)(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                    const tt_act_quant *xq, const float *grad_y, int32_t o, float *gw);

/* tt_conv2d_update_weight_s8's order: per output channel, its gradient into the scratch
 * (kh * kw * k floats) by wgrad, then the QAS rule per tap row. Forced inline so that wgrad
 * is a direct call in each variant. */
static inline __attribute__((always_inline)) void tt_conv2d_update_by_channel(
    const tt_conv_shape *s, const tt_channels *ch, int8_t *w, const tt_weight_quant *wq, const int8_t *x,
    const tt_act_quant *xq, const float *grad_y, const tt_update *u, float *scratch, tt_wgrad_channel_fn wgrad)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k, per_out = spatial * k;
    int32_t o, p;
    for (o = 0; o < s->out->c; ++o) {
        const float scale = wq->scale[wq->per_channel ? o : 0];
        tt_zero_unless_f32(scratch, per_out, 0);
        wgrad(s, ch, x, xq, grad_y, o, scratch);
        for (p = 0; p < spatial; ++p)
            tt_qas_update_run_s8(w + (o * spatial + p) * ch->in_channels, ch->index, 1, scratch + p * k, k, scale,
                                 &hp, u, o * per_out + p * k, 1);
    }
    tt_update_advance(u, s->out->c * per_out);
}

#endif
