/* conv2d weight gradient and fused QAS update of int8 graphs with Helium (Cortex-M55):
 * tt_conv2d_grad_weight_s8's floats and tt_conv2d_update_weight_s8's bytes, bit for bit
 * (declared in tt_kernels_simd.h).
 *
 * The arrangement of the _dsp variant (the nonzero d of 64 output pixels listed once per
 * output channel, tt_update_rows.h), the update's rule four weights at a time in vectors
 * where tt_update_mve.h's range checks allow (tt_qas_run_mve), with the
 * gradient elements of a tap row in vector lanes: sixteen per pass in four float32x4
 * registers; per listed pixel and four elements one VLDRB.S32 (four int8 x widened), VSUB
 * (the zero point), VCVT, VMUL by d (IEEE single rounding per lane, as the scalar code) and
 * VADD, each element taking its products in pixel order as the reference does. Rows of
 * any length: groups of 16, then 8, then 4, the last one tail-predicated (VCTP), so a
 * trained channel count that is no multiple of 4 gives the reference's floats too.
 *
 * Helium flushes subnormals, the scalar FPU does not. If every listed d has a magnitude
 * in [2^-103, 2^100] (and, accumulating, every element of grad_w is 0 or in [2^-103,
 * FLT_MAX]), every product d * (x - zp) and every running sum is a multiple of 2^-126,
 * hence 0 or normal (tt_kernels_simd.h, tt_grad_input_vector_safe, has the argument): the
 * vector sums are the scalar ones. From a chunk with a d outside that range on, an output
 * channel takes the scalar rows (tt_wgrad_tap_scalar, the reference's floats on any FPU);
 * accumulating into a grad_w with an element outside it, the whole call does. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"
#include "tt_update_rows.h"
#include "tt_update_mve.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* gw[0..n-1] += sum over the list of d * (x[off + i] - zp), n <= 16, taps checked if `check`. */
static inline void wgrad_tap_mve(float *gw, int32_t n, const tt_wg_list *l, const int8_t *xb,
                                 const tt_conv_shape *s, int32_t xc, int32_t zp, int32_t dy, int32_t dx,
                                 int32_t check)
{
    const int32_t in_h = s->in->h, in_w = s->in->w, ne = l->n;
    int32_t e;
    if (n == 16) {
        float32x4_t a0 = vld1q_f32(gw), a1 = vld1q_f32(gw + 4), a2 = vld1q_f32(gw + 8), a3 = vld1q_f32(gw + 12);
        for (e = 0; e < ne; ++e) {
            const int32_t ih = l->ih[e] + dy, iw = l->iw[e] + dx;
            const int8_t *xp;
            float d;
            if (check && ((uint32_t)ih >= (uint32_t)in_h || (uint32_t)iw >= (uint32_t)in_w)) continue;
            xp = xb + (ih * in_w + iw) * xc;
            d = l->d[e];
            a0 = vaddq_f32(a0, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_s32(xp), zp)), d));
            a1 = vaddq_f32(a1, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_s32(xp + 4), zp)), d));
            a2 = vaddq_f32(a2, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_s32(xp + 8), zp)), d));
            a3 = vaddq_f32(a3, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_s32(xp + 12), zp)), d));
        }
        vst1q_f32(gw, a0);
        vst1q_f32(gw + 4, a1);
        vst1q_f32(gw + 8, a2);
        vst1q_f32(gw + 12, a3);
    } else if (n == 8) {
        float32x4_t a0 = vld1q_f32(gw), a1 = vld1q_f32(gw + 4);
        for (e = 0; e < ne; ++e) {
            const int32_t ih = l->ih[e] + dy, iw = l->iw[e] + dx;
            const int8_t *xp;
            float d;
            if (check && ((uint32_t)ih >= (uint32_t)in_h || (uint32_t)iw >= (uint32_t)in_w)) continue;
            xp = xb + (ih * in_w + iw) * xc;
            d = l->d[e];
            a0 = vaddq_f32(a0, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_s32(xp), zp)), d));
            a1 = vaddq_f32(a1, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_s32(xp + 4), zp)), d));
        }
        vst1q_f32(gw, a0);
        vst1q_f32(gw + 4, a1);
    } else {   /* 1..4 elements, predicated */
        const mve_pred16_t p = vctp32q((uint32_t)n);
        float32x4_t a = vldrwq_z_f32(gw, p);
        for (e = 0; e < ne; ++e) {
            const int32_t ih = l->ih[e] + dy, iw = l->iw[e] + dx;
            if (check && ((uint32_t)ih >= (uint32_t)in_h || (uint32_t)iw >= (uint32_t)in_w)) continue;
            a = vaddq_f32(a, vmulq_n_f32(vcvtq_f32_s32(vsubq_n_s32(vldrbq_z_s32(xb + (ih * in_w + iw) * xc, p), zp)),
                                         l->d[e]));
        }
        vstrwq_p_f32(gw, a, p);
    }
}

/* Output channel o's gradient (kh, kw, k) added into gw. */
static void wgrad_channel_mve(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                              const tt_act_quant *xq, const float *grad_y, int32_t o, float *gw)
{
    const int32_t npix = s->out->h * s->out->w, k = ch->k, xc = ch->x_channels, zp = xq->zero_point;
    const tt_geom *g = s->g;
    /* every tap of every pixel inside the input: no per-pixel check */
    const int32_t inside = g->pad_top == 0 && g->pad_left == 0 &&
                           (s->out->h - 1) * g->stride_h + (s->kh - 1) * g->dil_h < s->in->h &&
                           (s->out->w - 1) * g->stride_w + (s->kw - 1) * g->dil_w < s->in->w;
    tt_wg_list l;
    int32_t p0, p1, ky, kx, i, n, scalar = 0;
    for (p0 = 0; p0 < npix; p0 += TT_WG_CHUNK) {
        p1 = npix - p0 < TT_WG_CHUNK ? npix : p0 + TT_WG_CHUNK;
        if (!tt_wg_list_build(&l, s, grad_y, o, xq->scale, p0, p1)) scalar = 1;
        if (scalar) {
            /* a d the vector sums could flush: from this chunk on the scalar way (the same
             * order; the sums may now be subnormal, which a vector add would flush) */
            for (ky = 0; ky < s->kh; ++ky)
                for (kx = 0; kx < s->kw; ++kx)
                    tt_wgrad_tap_scalar(gw + (ky * s->kw + kx) * k, k, &l, x, s, xc, zp, ky, kx);
            continue;
        }
        if (l.n == 0) continue;
        for (ky = 0; ky < s->kh; ++ky) {
            for (kx = 0; kx < s->kw; ++kx) {
                float *row = gw + (ky * s->kw + kx) * k;
                const int32_t dy = ky * g->dil_h, dx = kx * g->dil_w;
                for (i = 0; i < k; i += n) {
                    n = k - i >= 16 ? 16 : (k - i >= 8 ? 8 : (k - i >= 4 ? 4 : k - i));
                    if (inside)
                        wgrad_tap_mve(row + i, n, &l, x + i, s, xc, zp, dy, dx, 0);
                    else
                        wgrad_tap_mve(row + i, n, &l, x + i, s, xc, zp, dy, dx, 1);
                }
            }
        }
    }
}

void tt_conv2d_grad_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                  const tt_act_quant *xq, const float *grad_y, int32_t accumulate,
                                  float *grad_w)
{
    const int32_t per_out = s->kh * s->kw * ch->k;
    int32_t o;
    if (accumulate && !tt_gi_all_safe(grad_w, s->out->c * per_out, 127u - 103u, 254u)) {
        tt_conv2d_grad_weight_s8_dsp(s, ch, x, xq, grad_y, accumulate, grad_w);   /* scalar floats */
        return;
    }
    tt_zero_unless_f32(grad_w, s->out->c * per_out, accumulate);
    for (o = 0; o < s->out->c; ++o)
        wgrad_channel_mve(s, ch, x, xq, grad_y, o, grad_w + o * per_out);
}

static void __attribute__((noinline)) rule_stochastic(const struct tt_qas_run *r) { tt_qas_run_mve(r, 1); }
static void __attribute__((noinline)) rule_nearest(const struct tt_qas_run *r) { tt_qas_run_mve(r, 0); }

/* tt_conv2d_update_by_channel's order (per output channel its gradient into the scratch,
 * then the rule per tap row), the rule four weights at a time where tt_update_mve.h's
 * checks allow (stochastic / nearest rounding; the call's hyper-parameters, the channel's
 * scale and per four weights their floats in range), else tt_qas_update_run_s8. */
void tt_conv2d_update_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch, int8_t *w,
                                    const tt_weight_quant *wq, const int8_t *x,
                                    const tt_act_quant *xq, const float *grad_y, const tt_update *u,
                                    float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k, per_out = spatial * k, vec_mode = tt_qas_run_mve_ok(u);
    struct tt_qas_run r;
    int32_t o, p;
    r.hp = &hp;
    r.u = u;
    r.sc = r.yc = 0;
    r.widx = ch->index;
    r.n = k;
    for (o = 0; o < s->out->c; ++o) {
        const float scale = wq->scale[wq->per_channel ? o : 0];
        tt_zero_unless_f32(scratch, per_out, 0);
        wgrad_channel_mve(s, ch, x, xq, grad_y, o, scratch);
        if (vec_mode && tt_qas_scale_ok_mve(scale)) {
            r.s = scale;
            r.y = 1.0f / scale;
            for (p = 0; p < spatial; ++p) {
                r.w = w + (o * spatial + p) * ch->in_channels;
                r.grad = scratch + p * k;
                r.e0 = o * per_out + p * k;
                if (u->mode == TT_UPDATE_STOCHASTIC) rule_stochastic(&r);
                else rule_nearest(&r);
            }
            continue;
        }
        for (p = 0; p < spatial; ++p)
            tt_qas_update_run_s8(w + (o * spatial + p) * ch->in_channels, ch->index, 1, scratch + p * k, k, scale,
                                 &hp, u, o * per_out + p * k, 1);
    }
    tt_update_advance(u, s->out->c * per_out);
}

#endif
