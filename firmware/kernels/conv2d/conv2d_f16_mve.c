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
 *              kept in the scratch as halves, then tt_sgd_rule_f16 per element (8 at a time
 *              in float32 vectors where the weights are contiguous: the same bits).
 * Empty where __ARM_FEATURE_MVE is not defined (the board's reference kernels run instead). */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

static inline float16x8_t fma_run(float16x8_t acc, const float16_t *xp, const float16_t *wp, int32_t n)
{
    for (; n >= 8; n -= 8, xp += 8, wp += 8) acc = vfmaq_f16(acc, vld1q_f16(xp), vld1q_f16(wp));
    if (n > 0) {
        const mve_pred16_t p = vctp16q((uint32_t)n);
        acc = vfmaq_m_f16(acc, vldrhq_z_f16(xp, p), vldrhq_z_f16(wp, p), p);
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

/* Output (oh, ow), channels o .. o+3: four accumulators share each load of x; every channel
 * keeps its own lanes in the order of fma_run (runs per kernel row, 8 at a time, the tail
 * predicated). */
static void four_outputs(const float16_t *x, const tt_dims *in, const float16_t *w, int32_t kh, int32_t kw,
                         const tt_geom *g, int32_t ih0, int32_t iw0, int32_t kx0, int32_t kx1, int32_t o,
                         const tt_f16 *bias, int32_t act, tt_f16 *yp)
{
    const int32_t cin = in->c, ws = kh * kw * cin;
    float16x8_t a0 = vdupq_n_f16(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int32_t ky, kx, t;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t ih = ih0 + ky * g->dil_h;
        if (ih < 0 || ih >= in->h) continue;
        for (kx = kx0; kx < kx1; ++kx) {
            const int32_t iw = iw0 + kx * g->dil_w;
            const float16_t *xp, *w0, *w1, *w2, *w3;
            int32_t n;
            if (g->dil_w == 1) {           /* the whole run of the row at once */
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
            for (t = n >> 3; t > 0; --t) {
                const float16x8_t xv = vld1q_f16(xp);
                a0 = vfmaq_f16(a0, xv, vld1q_f16(w0));
                a1 = vfmaq_f16(a1, xv, vld1q_f16(w1));
                a2 = vfmaq_f16(a2, xv, vld1q_f16(w2));
                a3 = vfmaq_f16(a3, xv, vld1q_f16(w3));
                xp += 8;
                w0 += 8;
                w1 += 8;
                w2 += 8;
                w3 += 8;
            }
            if (n & 7) {
                const mve_pred16_t p = vctp16q((uint32_t)(n & 7));
                const float16x8_t xv = vldrhq_z_f16(xp, p);
                a0 = vfmaq_m_f16(a0, xv, vldrhq_z_f16(w0, p), p);
                a1 = vfmaq_m_f16(a1, xv, vldrhq_z_f16(w1, p), p);
                a2 = vfmaq_m_f16(a2, xv, vldrhq_z_f16(w2, p), p);
                a3 = vfmaq_m_f16(a3, xv, vldrhq_z_f16(w3, p), p);
            }
        }
    }
    yp[o] = tt_f2h(tt_act_f16(lanes_sum(bias ? tt_h2f(bias[o]) : 0.0f, a0), act));
    yp[o + 1] = tt_f2h(tt_act_f16(lanes_sum(bias ? tt_h2f(bias[o + 1]) : 0.0f, a1), act));
    yp[o + 2] = tt_f2h(tt_act_f16(lanes_sum(bias ? tt_h2f(bias[o + 2]) : 0.0f, a2), act));
    yp[o + 3] = tt_f2h(tt_act_f16(lanes_sum(bias ? tt_h2f(bias[o + 3]) : 0.0f, a3), act));
}

/* The same for one output channel. */
static void one_output(const float16_t *x, const tt_dims *in, const float16_t *w, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t ih0, int32_t iw0, int32_t kx0, int32_t kx1, int32_t o,
                       const tt_f16 *bias, int32_t act, tt_f16 *yp)
{
    const int32_t cin = in->c;
    float16x8_t acc = vdupq_n_f16(0.0f);
    int32_t ky, kx;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t ih = ih0 + ky * g->dil_h;
        const float16_t *xr, *wr;
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

void tt_conv2d_f16_mve(const tt_f16 *x, const tt_dims *in, const tt_f16 *w, const tt_f16 *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, tt_f16 *y,
                       const tt_dims *out)
{
    const float16_t *xh = (const float16_t *)x, *wh = (const float16_t *)w;
    int32_t oh, ow, o;
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
            for (o = 0; o + 3 < out->c; o += 4) four_outputs(xh, in, wh, kh, kw, g, ih0, iw0, kx0, kx1, o, bias, act, yp);
            for (; o < out->c; ++o) one_output(xh, in, wh, kh, kw, g, ih0, iw0, kx0, kx1, o, bias, act, yp);
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
            for (i = 0; i < cin; i += 32) {        /* 32 channels in four accumulators */
                const int32_t left = cin - i;
                const mve_pred16_t p0 = vctp16q((uint32_t)left);
                const mve_pred16_t p1 = vctp16q((uint32_t)(left > 8 ? left - 8 : 0));
                const mve_pred16_t p2 = vctp16q((uint32_t)(left > 16 ? left - 16 : 0));
                const mve_pred16_t p3 = vctp16q((uint32_t)(left > 24 ? left - 24 : 0));
                float16x8_t a0 = vdupq_n_f16(0.0f), a1 = a0, a2 = a0, a3 = a0;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
                    if (oh < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
                        const float16_t *gy, *wp;
                        if (ow < 0) continue;
                        gy = (const float16_t *)(grad_y + (oh * out->w + ow) * out->c);
                        wp = (const float16_t *)(w + (ky * kw + kx) * cin + i);
                        if (left >= 32) {
                            for (o = 0; o < out->c; ++o, wp += wstride) {
                                const float16_t d = gy[o];
                                a0 = vfmaq_n_f16(a0, vld1q_f16(wp), d);
                                a1 = vfmaq_n_f16(a1, vld1q_f16(wp + 8), d);
                                a2 = vfmaq_n_f16(a2, vld1q_f16(wp + 16), d);
                                a3 = vfmaq_n_f16(a3, vld1q_f16(wp + 24), d);
                            }
                            continue;
                        }
                        for (o = 0; o < out->c; ++o, wp += wstride) {
                            const float16_t d = gy[o];
                            a0 = vfmaq_n_f16(a0, vldrhq_z_f16(wp, p0), d);
                            if (left > 8) a1 = vfmaq_n_f16(a1, vldrhq_z_f16(wp + 8, p1), d);
                            if (left > 16) a2 = vfmaq_n_f16(a2, vldrhq_z_f16(wp + 16, p2), d);
                            if (left > 24) a3 = vfmaq_n_f16(a3, vldrhq_z_f16(wp + 24, p3), d);
                        }
                    }
                }
                if (accumulate) {
                    a0 = vaddq_f16(vldrhq_z_f16(gx + i, p0), a0);
                    a1 = vaddq_f16(vldrhq_z_f16(gx + i + 8, p1), a1);
                    a2 = vaddq_f16(vldrhq_z_f16(gx + i + 16, p2), a2);
                    a3 = vaddq_f16(vldrhq_z_f16(gx + i + 24, p3), a3);
                }
                vstrhq_p_f16(gx + i, a0, p0);
                vstrhq_p_f16(gx + i + 8, a1, p1);
                vstrhq_p_f16(gx + i + 16, a2, p2);
                vstrhq_p_f16(gx + i + 24, a3, p3);
            }
        }
    }
}

/* The vector update converts half <-> float32 with integer operations (VMOVLB/T widen the
 * even / odd halves, VMOVNB/T narrow back; the exponent rebias and round-to-nearest-even by
 * hand): QEMU 7.2 computes MVE's VCVTB/VCVTT between half and float32 wrongly, and MVE's
 * float32 arithmetic runs with flush-to-zero (the standard FPSCR value). So a block goes
 * through the scalar rule when any operand is a half subnormal, inf or NaN, a float32 value is
 * subnormal or not finite, or a result would not be a normal half (or zero). */
static inline int odd_half(uint16x8_t h)      /* subnormal, inf or NaN */
{
    const int16x8_t a = vreinterpretq_s16_u16(vandq_u16(h, vdupq_n_u16(0x7FFFu)));
    return (vcmpgeq_n_s16(a, 0x7C00) | (vcmpltq_n_s16(a, 0x0400) & vcmpneq_n_s16(a, 0))) != 0;
}

static inline int odd_f32(float32x4_t v)      /* subnormal, inf or NaN */
{
    const int32x4_t a = vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x7FFFFFFFu)));
    return (vcmpgeq_n_s32(a, 0x7F800000) | (vcmpltq_n_s32(a, 0x00800000) & vcmpneq_n_s32(a, 0))) != 0;
}

static inline int not_normal_half(float32x4_t v)   /* nonzero and below 2^-14, or >= 65504 */
{
    const int32x4_t a = vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x7FFFFFFFu)));
    return (vcmpgeq_n_s32(a, 0x477FE000) | (vcmpltq_n_s32(a, 0x38800000) & vcmpneq_n_s32(a, 0))) != 0;
}

static inline float32x4_t widen(uint32x4_t h)  /* normal or zero halves, one per 32-bit lane */
{
    const uint32x4_t mag = vandq_u32(h, vdupq_n_u32(0x7FFFu));
    const uint32x4_t f = vaddq_u32(vshlq_n_u32(mag, 13), vdupq_n_u32(112u << 23));
    const uint32x4_t sign = vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x8000u)), 16);
    return vreinterpretq_f32_u32(vorrq_u32(sign, vpselq_u32(vdupq_n_u32(0u), f, vcmpeqq_n_u32(mag, 0u))));
}

static inline uint32x4_t narrow(float32x4_t v)  /* zero or a normal half: rounded to nearest even */
{
    const uint32x4_t b = vreinterpretq_u32_f32(v);
    const uint32x4_t a = vandq_u32(b, vdupq_n_u32(0x7FFFFFFFu));
    uint32x4_t r = vaddq_u32(a, vaddq_u32(vdupq_n_u32(0x0FFFu), vandq_u32(vshrq_n_u32(a, 13), vdupq_n_u32(1u))));
    r = vsubq_u32(vshrq_n_u32(r, 13), vdupq_n_u32(112u << 10));
    return vorrq_u32(vandq_u32(vshrq_n_u32(b, 16), vdupq_n_u32(0x8000u)),
                     vpselq_u32(vdupq_n_u32(0u), r, vcmpeqq_n_u32(a, 0u)));
}

/* tt_sgd_rule_f16 on n contiguous elements (weights w, half gradients gw, update elements
 * e0 ..), 8 at a time in float32 vectors (even and odd lanes): the same operations, each
 * rounded once (g * 2^-s is g / 2^s exactly: the loss scale is a power of two), so the same
 * bits as the scalar rule. A non-finite gradient under dynamic loss scaling, the blocks above,
 * and the last n % 8 go through the scalar rule. */
static void sgd_block(tt_f16 *w, const float16_t *gw, int32_t n, const tt_hparams *hp, const tt_update *u,
                      int32_t e0)
{
    tt_loss_scale *ls = u->ls;
    const float inv = 1.0f / ls->scale, lr = hp->lr, wd = hp->weight_decay, mu = hp->momentum;
    int32_t i = 0, j;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t g16 = vld1q_u16((const uint16_t *)(gw + i));
        const uint16x8_t w16 = vld1q_u16((const uint16_t *)(w + i));
        float32x4x2_t m = { { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) } };
        float32x4_t gb, gt, wb, wt;
        uint16x8_t r = vdupq_n_u16(0);
        if (ls->dynamic) {
            if (ls->overflow) return;
            if (vcmpgeq_n_s16(vreinterpretq_s16_u16(vandq_u16(g16, vdupq_n_u16(0x7FFFu))), 0x7C00) != 0) break;
        }
        if (odd_half(g16) || (!u->shadow && odd_half(w16))) goto scalar;
        gb = vmulq_n_f32(widen(vmovlbq_u16(g16)), inv);
        gt = vmulq_n_f32(widen(vmovltq_u16(g16)), inv);
        if (u->shadow) {                        /* mixed: the fp32 master copy, de-interleaved */
            float32x4x2_t c = vld2q_f32(u->shadow + e0 + i);
            wb = c.val[0];
            wt = c.val[1];
            if (odd_f32(wb) || odd_f32(wt)) goto scalar;
        } else {
            wb = widen(vmovlbq_u16(w16));
            wt = widen(vmovltq_u16(w16));
        }
        if (odd_f32(gb) || odd_f32(gt)) goto scalar;
        gb = vaddq_f32(gb, vmulq_n_f32(wb, wd));
        gt = vaddq_f32(gt, vmulq_n_f32(wt, wd));
        if (u->momentum) {
            m = vld2q_f32(u->momentum + e0 + i);
            if (odd_f32(m.val[0]) || odd_f32(m.val[1])) goto scalar;
            m.val[0] = vaddq_f32(vmulq_n_f32(m.val[0], mu), gb);
            m.val[1] = vaddq_f32(vmulq_n_f32(m.val[1], mu), gt);
            gb = m.val[0];
            gt = m.val[1];
        }
        if (odd_f32(gb) || odd_f32(gt)) goto scalar;
        wb = vsubq_f32(wb, vmulq_n_f32(gb, lr));
        wt = vsubq_f32(wt, vmulq_n_f32(gt, lr));
        if (odd_f32(wb) || odd_f32(wt) || not_normal_half(wb) || not_normal_half(wt)) goto scalar;
        if (u->momentum) vst2q_f32(u->momentum + e0 + i, m);
        if (u->shadow) {
            float32x4x2_t c;
            c.val[0] = wb;
            c.val[1] = wt;
            vst2q_f32(u->shadow + e0 + i, c);
        }
        r = vmovnbq_u32(r, narrow(wb));
        r = vmovntq_u32(r, narrow(wt));
        vst1q_u16((uint16_t *)(w + i), r);
        continue;
    scalar:
        for (j = i; j < i + 8; ++j) w[j] = tt_sgd_rule_f16(w[j], (float)gw[j], hp, u, e0 + j);
    }
    for (; i < n; ++i) w[i] = tt_sgd_rule_f16(w[i], (float)gw[i], hp, u, e0 + i);
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

void tt_conv2d_update_weight_f16_mve(const tt_conv_shape *s, const tt_channels *ch, tt_f16 *w,
                                     const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u,
                                     float *scratch)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t per_out = spatial * k, oc = out->c;
    float16_t *gw = (float16_t *)scratch;       /* per_out halves: the channel's gradient */
    const float16_t *gyh = (const float16_t *)grad_y, *xh = (const float16_t *)x;
    int32_t o, oh, ow, ky, kx, p, j;
    for (o = 0; o < oc; ++o) {
        for (ky = 0; ky < kh; ++ky) {
            int32_t oh0, oh1;
            tap_range(ky, g->stride_h, g->pad_top, g->dil_h, in->h, out->h, &oh0, &oh1);
            for (kx = 0; kx < kw; ++kx) {
                int32_t ow0, ow1;
                tap_range(kx, g->stride_w, g->pad_left, g->dil_w, in->w, out->w, &ow0, &ow1);
                for (j = 0; j < k; j += 32) {      /* 32 channels in four accumulators */
                    float16x8_t a0 = vdupq_n_f16(0.0f), a1 = a0, a2 = a0, a3 = a0;
                    float16_t *dst = gw + (ky * kw + kx) * k + j;
                    const int32_t left = k - j;
                    const mve_pred16_t p0 = vctp16q((uint32_t)left);
                    const mve_pred16_t p1 = vctp16q((uint32_t)(left > 8 ? left - 8 : 0));
                    const mve_pred16_t p2 = vctp16q((uint32_t)(left > 16 ? left - 16 : 0));
                    const mve_pred16_t p3 = vctp16q((uint32_t)(left > 24 ? left - 24 : 0));
                    for (oh = oh0; oh < oh1; ++oh) {
                        const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                        const float16_t *gr = gyh + oh * out->w * oc + o;
                        const float16_t *xr = xh + ih * in->w * xc + j;
                        if (left >= 32) {
                            for (ow = ow0; ow < ow1; ++ow) {
                                const float16_t *xp = xr + (ow * g->stride_w - g->pad_left + kx * g->dil_w) * xc;
                                const float16_t d = gr[ow * oc];
                                a0 = vfmaq_n_f16(a0, vld1q_f16(xp), d);
                                a1 = vfmaq_n_f16(a1, vld1q_f16(xp + 8), d);
                                a2 = vfmaq_n_f16(a2, vld1q_f16(xp + 16), d);
                                a3 = vfmaq_n_f16(a3, vld1q_f16(xp + 24), d);
                            }
                            continue;
                        }
                        for (ow = ow0; ow < ow1; ++ow) {  /* fewer channels: loads past k read 0 */
                            const float16_t *xp = xr + (ow * g->stride_w - g->pad_left + kx * g->dil_w) * xc;
                            const float16_t d = gr[ow * oc];
                            a0 = vfmaq_n_f16(a0, vldrhq_z_f16(xp, p0), d);
                            if (left > 8) a1 = vfmaq_n_f16(a1, vldrhq_z_f16(xp + 8, p1), d);
                            if (left > 16) a2 = vfmaq_n_f16(a2, vldrhq_z_f16(xp + 16, p2), d);
                            if (left > 24) a3 = vfmaq_n_f16(a3, vldrhq_z_f16(xp + 24, p3), d);
                        }
                    }
                    vstrhq_p_f16(dst, a0, p0);
                    vstrhq_p_f16(dst + 8, a1, p1);
                    vstrhq_p_f16(dst + 16, a2, p2);
                    vstrhq_p_f16(dst + 24, a3, p3);
                }
            }
        }
        if (!ch->index && k == ch->in_channels) {      /* the channel's weights are contiguous */
            sgd_block(w + o * per_out, gw, per_out, &hp, u, o * per_out);
            continue;
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
