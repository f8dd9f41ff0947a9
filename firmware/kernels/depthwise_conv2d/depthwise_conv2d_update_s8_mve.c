/* depthwise conv2d weight gradient and fused QAS update of int8 graphs with Helium
 * (Cortex-M55): tt_depthwise_conv2d_grad_weight_s8's floats and
 * tt_depthwise_conv2d_update_weight_s8's bytes, bit for bit (declared in tt_kernels_simd.h).
 *
 * The gradient element (tap t, trained channel j) is the sum, over the output pixels in
 * ascending order, of d * (x - zp) with d = grad_y[pixel, yc_j] * x_scale; channels never
 * mix. So the channels go in vector lanes, sixteen at a time (four float32x4; then 8, 4 and
 * a tail-predicated rest, so any channel count): per chunk of 16 output pixels d is made
 * once per pixel for the 16 lanes (grad_y's channels loaded, gathered through ch->index,
 * VMUL by x_scale), then per tap the 16 sums stay in registers over the pixels whose window
 * tap lies inside the input (a rectangle of output rows and columns: no per-pixel check),
 * and each pixel costs per four lanes one VLDRB.S32 (four int8 x widened), VSUB (the zero
 * point), VCVT, a VLDRW of d, VMUL and VADD. Each element takes its products in pixel
 * order, as the reference.
 *
 * The reference skips a pixel whose d is 0; here a lane with d = 0 adds d * (x - zp) = +-0,
 * which leaves a sum alone unless the sum is -0. A sum that starts at +0 is never -0
 * (x + (-x) rounds to +0), so only an old grad_w of -0 (accumulating) could change: such a
 * call runs the _dsp variant.
 *
 * Helium flushes subnormals, the scalar FPU does not. A chunk's grad_y lanes are checked by
 * their exponent fields so that every nonzero d lies in [2^-103, 2^100]
 * (then every product and sum is 0 or a normal multiple of 2^-126, tt_kernels_simd.h has
 * the argument, and the vector products of d are the scalar ones); accumulating, every old
 * element must be 0 or in [2^-103, FLT_MAX]. From a chunk failing that on, a group takes
 * the reference's scalar arithmetic; a call whose old elements fail it runs the _dsp
 * variant.
 *
 * The update: per group its gradients into a stack block (16 lanes x up to 12 taps, 8 x
 * up to 25, 4 x up to 50; more taps run the _dsp variant), then per tap the QAS rule on the group's lanes, four weights at a time
 * (tt_update_mve.h: stochastic / nearest rounding, the division by each channel's scale
 * exact through fused multiply-adds), with range checks that keep every float normal;
 * shadow / residual, a group with a scale outside [2^-40, 2^40), hyper-parameters out of
 * range, four weights failing a check and the last 1-3 lanes take the scalar rule
 * (tt_qas_update_run_s8). The elements, draws and momentum slots are the reference's
 * (e = tap * k + j); the rule of one element reads nothing another writes, so the order
 * does not matter.
 * Stack (arm-none-eabi-gcc -fstack-usage): ~1.6 KB for the gradient (the d block, 1 KB),
 * ~2.7 KB for the update (its sums, 0.8 KB, besides). */
#include <string.h>
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"
#include "tt_update_rows.h"
#include "tt_update_mve.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

#define DW_CHUNK 16                    /* output pixels per block of d */
#define DW_ACC 200                     /* the update's sums: 16 lanes x 12 taps, 8 x 25, 4 x 50 */

/* What a group of channels reads. */
typedef struct {
    const tt_conv_shape *s;
    const tt_channels *ch;
    const int8_t *x0, *x;              /* x, and x + j0 */
    const float *grad_y;
    const uint32_t *yidx;              /* ch->index + j0 as offsets, or NULL (channels j0..) */
    int32_t j0, n, zp;                 /* first trained channel, lanes in use, x zero point */
    float x_scale;
    uint32_t least, most;              /* a safe nonzero |grad_y|'s bits: least - 1 .. most */
    float *gw;                         /* element (t, lane l) at gw[t * gstride + l] */
    int32_t gstride;
} dw_group;

/* The first and one past the last output index o whose input coordinate o * stride - pad + off
 * lies in [0, in), within [o0, o1). */
static inline void valid_range(int32_t stride, int32_t pad, int32_t off, int32_t in, int32_t o0, int32_t o1,
                               int32_t *lo, int32_t *hi)
{
    const int32_t t = pad - off, u = in - 1 + t;
    int32_t a = t <= 0 ? 0 : (t + stride - 1) / stride, b = u < 0 ? 0 : u / stride + 1;
    if (a < o0) a = o0;
    if (b > o1) b = o1;
    *lo = a;
    *hi = b < a ? a : b;
}

/* The reference's scalar arithmetic for the group's lanes, from output pixel p0 on. */
static void scalar_rest(const dw_group *G, int32_t p0)
{
    const tt_conv_shape *s = G->s;
    const tt_geom *g = s->g;
    const int32_t npix = s->out->h * s->out->w, ow_n = s->out->w, cout = s->out->c, xc = G->ch->x_channels;
    const int32_t in_h = s->in->h, in_w = s->in->w;
    int32_t l, p, ky, kx;
    for (l = 0; l < G->n; ++l) {
        const int32_t j = G->j0 + l, yc = G->yidx ? (int32_t)G->yidx[l] : j;
        float *gl = G->gw + l;
        for (p = p0; p < npix; ++p) {
            const int32_t ih0 = (p / ow_n) * g->stride_h - g->pad_top, iw0 = (p % ow_n) * g->stride_w - g->pad_left;
            float d = G->grad_y[p * cout + yc];
            if (d == 0.0f) continue;
            d = d * G->x_scale;
            for (ky = 0; ky < s->kh; ++ky) {
                const int32_t ih = ih0 + ky * g->dil_h;
                if ((uint32_t)ih >= (uint32_t)in_h) continue;
                for (kx = 0; kx < s->kw; ++kx) {
                    const int32_t iw = iw0 + kx * g->dil_w;
                    float *gp;
                    if ((uint32_t)iw >= (uint32_t)in_w) continue;
                    gp = gl + (ky * s->kw + kx) * G->gstride;
                    *gp += d * (float)((int32_t)G->x[(ih * in_w + iw) * xc + l] - G->zp);
                }
            }
        }
    }
}

/* Four lanes (vector v) of one pixel's products added into A. */
#define DW_LANES4(v, A)                                                                                  \
    do {                                                                                                 \
        const int32x4_t xi_ = PRED ? vldrbq_z_s32(xp + 4 * (v), pv[v]) : vldrbq_s32(xp + 4 * (v));        \
        A = vaddq_f32(A, vmulq_f32(vcvtq_f32_s32(vsubq_n_s32(xi_, zp)), vld1q_f32(dp + 4 * (v))));      \
    } while (0)

/* The group's gradients over every output pixel: NV vectors of lanes, PRED: the last one(s)
 * partly used (predicated loads and stores). Forced inline into one function per (NV, PRED). */
static inline __attribute__((always_inline)) void group_run(const dw_group *G, const int NV, const int PRED)
{
    const tt_conv_shape *s = G->s;
    const tt_geom *g = s->g;
    const int32_t oh_n = s->out->h, ow_n = s->out->w, cout = s->out->c, xc = G->ch->x_channels;
    const int32_t in_w = s->in->w, sh = g->stride_h, sw = g->stride_w, L = NV * 4, zp = G->zp, xstep = sw * xc;
    const int32_t rows = ow_n <= DW_CHUNK ? DW_CHUNK / ow_n : 1, cols = ow_n <= DW_CHUNK ? ow_n : DW_CHUNK;
    float D[DW_CHUNK * 16] TT_ALIGNED(16);
    mve_pred16_t pv[4];
    uint32x4_t off[4];
    int32_t v, r0, c0;
    for (v = 0; v < NV; ++v) {
        const int32_t r = G->n - 4 * v;
        pv[v] = PRED ? vctp32q((uint32_t)(r < 0 ? 0 : r)) : (mve_pred16_t)0xFFFF;
        off[v] = G->yidx ? vldrwq_z_u32(G->yidx + 4 * v, pv[v]) : vdupq_n_u32(0);
    }
    for (r0 = 0; r0 < oh_n; r0 += rows) {
        const int32_t r1 = r0 + rows < oh_n ? r0 + rows : oh_n;
        for (c0 = 0; c0 < ow_n; c0 += cols) {
            const int32_t c1 = c0 + cols < ow_n ? c0 + cols : ow_n, cw = c1 - c0;
            /* the check, over the chunk: the least |g| - 1 (unsigned: a zero wraps to the top,
             * passing) and the largest |g|, as bit patterns (tt_gi_bad_lanes' test without
             * predicates, which crash arm-none-eabi-gcc 12's combine pass inlined here) */
            uint32x4_t least = vdupq_n_u32(0xFFFFFFFFu), most = vdupq_n_u32(0u);
            int32_t oh, ow, ky, kx, q = 0;
            /* d of the chunk's pixels, lane by lane (zero where grad_y is) */
            for (oh = r0; oh < r1; ++oh) {
                for (ow = c0; ow < c1; ++ow, ++q) {
                    const float *gy = G->grad_y + (oh * ow_n + ow) * cout;
                    for (v = 0; v < NV; ++v) {
                        float32x4_t gv;
                        if (G->yidx)
                            gv = PRED ? vldrwq_gather_shifted_offset_z_f32(gy, off[v], pv[v])
                                      : vldrwq_gather_shifted_offset_f32(gy, off[v]);
                        else
                            gv = PRED ? vldrwq_z_f32(gy + G->j0 + 4 * v, pv[v]) : vld1q_f32(gy + G->j0 + 4 * v);
                        {
                            const uint32x4_t mag = vandq_u32(vreinterpretq_u32_f32(gv), vdupq_n_u32(0x7FFFFFFFu));
                            least = vminq_u32(least, vsubq_n_u32(mag, 1u));
                            most = vmaxq_u32(most, mag);
                        }
                        vst1q_f32(D + q * L + 4 * v, vmulq_n_f32(gv, G->x_scale));
                    }
                }
            }
            if (vminvq_u32(0xFFFFFFFFu, least) < G->least || vmaxvq_u32(0u, most) > G->most) {
                /* a d the vector sums could flush: the scalar way from here on */
                scalar_rest(G, r0 * ow_n + c0);
                return;
            }
            for (ky = 0; ky < s->kh; ++ky) {
                const int32_t dy = ky * g->dil_h;
                int32_t oh0, oh1;
                valid_range(sh, g->pad_top, dy, s->in->h, r0, r1, &oh0, &oh1);
                for (kx = 0; kx < s->kw; ++kx) {
                    const int32_t dx = kx * g->dil_w;
                    float *gp = G->gw + (ky * s->kw + kx) * G->gstride;
                    float32x4_t a0, a1 = vdupq_n_f32(0.0f), a2 = a1, a3 = a1;
                    int32_t ow0, ow1;
                    valid_range(sw, g->pad_left, dx, in_w, c0, c1, &ow0, &ow1);
                    if (oh0 >= oh1 || ow0 >= ow1) continue;
                    /* the sums in four named registers (an array of them stays in memory) */
                    a0 = PRED ? vldrwq_z_f32(gp, pv[0]) : vld1q_f32(gp);
                    if (NV > 1) a1 = PRED ? vldrwq_z_f32(gp + 4, pv[1]) : vld1q_f32(gp + 4);
                    if (NV > 2) {
                        a2 = PRED ? vldrwq_z_f32(gp + 8, pv[2]) : vld1q_f32(gp + 8);
                        a3 = PRED ? vldrwq_z_f32(gp + 12, pv[3]) : vld1q_f32(gp + 12);
                    }
                    for (oh = oh0; oh < oh1; ++oh) {
                        const int8_t *xp = G->x + ((oh * sh - g->pad_top + dy) * in_w + ow0 * sw - g->pad_left + dx) * xc;
                        const float *dp = D + ((oh - r0) * cw + ow0 - c0) * L;
                        for (ow = ow0; ow < ow1; ++ow, xp += xstep, dp += L) {
                            DW_LANES4(0, a0);
                            if (NV > 1) DW_LANES4(1, a1);
                            if (NV > 2) {
                                DW_LANES4(2, a2);
                                DW_LANES4(3, a3);
                            }
                        }
                    }
                    if (PRED) {
                        vstrwq_p_f32(gp, a0, pv[0]);
                        if (NV > 1) vstrwq_p_f32(gp + 4, a1, pv[1]);
                        if (NV > 2) {
                            vstrwq_p_f32(gp + 8, a2, pv[2]);
                            vstrwq_p_f32(gp + 12, a3, pv[3]);
                        }
                    } else {
                        vst1q_f32(gp, a0);
                        if (NV > 1) vst1q_f32(gp + 4, a1);
                        if (NV > 2) {
                            vst1q_f32(gp + 8, a2);
                            vst1q_f32(gp + 12, a3);
                        }
                    }
                }
            }
        }
    }
}

static void __attribute__((noinline)) group4(const dw_group *G) { group_run(G, 4, 0); }
static void __attribute__((noinline)) group4p(const dw_group *G) { group_run(G, 4, 1); }
static void __attribute__((noinline)) group2(const dw_group *G) { group_run(G, 2, 0); }
static void __attribute__((noinline)) group2p(const dw_group *G) { group_run(G, 2, 1); }
static void __attribute__((noinline)) group1(const dw_group *G) { group_run(G, 1, 0); }
static void __attribute__((noinline)) group1p(const dw_group *G) { group_run(G, 1, 1); }

/* The lanes of the next group from channel j0 (at most `most`: 16, 8 or 4), and runs it. */
static int32_t next_group(dw_group *G, int32_t j0, int32_t most)
{
    const int32_t r = G->ch->k - j0;
    G->j0 = j0;
    G->x = G->x0 + j0;
    G->yidx = G->ch->index ? (const uint32_t *)(const void *)(G->ch->index + j0) : 0;
    if (most >= 16 && r >= 16) { G->n = 16; group4(G); }
    else if (most >= 16 && r > 8) { G->n = r; group4p(G); }
    else if (most >= 8 && r >= 8) { G->n = 8; group2(G); }
    else if (most >= 8 && r > 4) { G->n = r; group2p(G); }
    else if (r >= 4) { G->n = 4; group1(G); }
    else { G->n = r; group1p(G); }
    return G->n;
}

/* The group's fixed fields (if x_scale is no normal float, every nonzero d counts as
 * unsafe). */
static void group_init(dw_group *G, const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                       const tt_act_quant *xq, const float *grad_y)
{
    uint32_t b, ex;
    memcpy(&b, &xq->scale, 4);
    ex = (b >> 23) & 0xFFu;
    G->s = s;
    G->ch = ch;
    G->x0 = G->x = x;
    G->j0 = 0;
    G->grad_y = grad_y;
    G->zp = xq->zero_point;
    G->x_scale = xq->scale;
    /* nonzero d = g * x_scale within [2^-103, 2^100]: e_g + e_x - 254 >= -103 and
     * e_g + e_x - 252 <= 100 (a sign bit set on the scale: no window) */
    if (ex == 0u || ex == 255u || (b >> 31)) {
        G->least = 0xFFFFFFFFu;        /* only zeros pass */
        G->most = 0u;
    } else {
        const uint32_t lo = ex >= 150u ? 1u : 151u - ex, hi = 352u - ex > 254u ? 254u : 352u - ex;
        G->least = (lo << 23) - 1u;    /* exponent lo and up */
        G->most = ((hi + 1u) << 23) - 1u;   /* exponent hi and down */
    }
}

/* tt_gi_all_safe out of line (inlined it crashes arm-none-eabi-gcc 12's combine pass). */
static int32_t __attribute__((noinline)) all_safe(const float *v, int32_t n, uint32_t lo)
{
    return tt_gi_all_safe(v, n, lo, 254u);
}

/* 1 if an element is -0 (a lane adding +0 would turn it +0; the reference leaves it). */
static int32_t any_negative_zero(const float *v, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        uint32_t b;
        memcpy(&b, v + i, 4);
        if (b == 0x80000000u) return 1;
    }
    return 0;
}

void tt_depthwise_conv2d_grad_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch,
                                            const int8_t *x, const tt_act_quant *xq,
                                            const float *grad_y, int32_t accumulate, float *grad_w)
{
    const int32_t n = s->kh * s->kw * ch->k;
    dw_group G;
    int32_t j0;
    if (accumulate && (!all_safe(grad_w, n, 127u - 103u) || any_negative_zero(grad_w, n))) {
        tt_depthwise_conv2d_grad_weight_s8_dsp(s, ch, x, xq, grad_y, accumulate, grad_w);   /* scalar floats */
        return;
    }
    tt_zero_unless_f32(grad_w, n, accumulate);
    group_init(&G, s, ch, x, xq, grad_y);
    G.gstride = ch->k;
    for (j0 = 0; j0 < ch->k;) {
        G.gw = grad_w + j0;
        j0 += next_group(&G, j0, 16);
    }
}

static void __attribute__((noinline)) rule_stochastic(const struct tt_qas_run *r) { tt_qas_run_mve(r, 1); }
static void __attribute__((noinline)) rule_nearest(const struct tt_qas_run *r) { tt_qas_run_mve(r, 0); }

void tt_depthwise_conv2d_update_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch,
                                              int8_t *w, const tt_weight_quant *wq, const int8_t *x,
                                              const tt_act_quant *xq, const float *grad_y,
                                              const tt_update *u, float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k;
    const int32_t most = spatial * 16 <= DW_ACC ? 16 : (spatial * 8 <= DW_ACC ? 8 : 4);
    /* the rule in vectors: stochastic / nearest rounding, hyper-parameters in range */
    const int32_t vec_mode = tt_qas_run_mve_ok(u);
    float acc[DW_ACC] TT_ALIGNED(16), sc[16] TT_ALIGNED(16), yc[16] TT_ALIGNED(16);
    dw_group G;
    struct tt_qas_run r;
    int32_t j0, l, t, n;
    if (spatial * 4 > DW_ACC) {
        tt_depthwise_conv2d_update_weight_s8_dsp(s, ch, w, wq, x, xq, grad_y, u, scratch);
        return;
    }
    group_init(&G, s, ch, x, xq, grad_y);
    G.gw = acc;
    G.gstride = most;
    r.hp = &hp;
    r.u = u;
    r.sc = sc;
    r.yc = yc;
    for (j0 = 0; j0 < k; j0 += n) {
        int32_t vec = vec_mode;
        memset(acc, 0, sizeof(float) * (size_t)(spatial * most));
        n = next_group(&G, j0, most);
        for (l = 0; l < n; ++l) {
            const int32_t c = ch->index ? ch->index[j0 + l] : j0 + l;
            sc[l] = wq->scale[wq->per_channel ? c : 0];
            if (tt_qas_scale_ok_mve(sc[l])) yc[l] = 1.0f / sc[l];
            else vec = 0;
        }
        if (vec) {      /* per tap, the group's lanes */
            r.n = n;
            for (t = 0; t < spatial; ++t) {
                r.w = w + t * ch->in_channels + (ch->index ? 0 : j0);
                r.widx = ch->index ? ch->index + j0 : 0;
                r.grad = acc + t * most;
                r.e0 = t * k + j0;
                if (u->mode == TT_UPDATE_STOCHASTIC) rule_stochastic(&r);
                else rule_nearest(&r);
            }
            continue;
        }
        for (l = 0; l < n; ++l) {     /* per channel, the scalar rule over its taps */
            const int32_t j = j0 + l, c = ch->index ? ch->index[j] : j;
            for (t = 0; t < spatial; ++t) scratch[t] = acc[t * most + l];
            tt_qas_update_run_s8(w + c, NULL, ch->in_channels, scratch, spatial, sc[l], &hp, u, j, k);
        }
    }
    tt_update_advance(u, spatial * k);
}

#endif
