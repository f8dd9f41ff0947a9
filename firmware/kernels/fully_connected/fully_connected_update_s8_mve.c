/* fully connected fused QAS weight update of int8 graphs with Helium (Cortex-M55):
 * tt_fully_connected_update_weight_s8's bytes (weights, momentum, PRNG state), bit for bit
 * (declared in tt_kernels_simd.h).
 *
 * The rule per weight (tt_update_rules.h): g = (d * (x - zp)) / s, g = g + wd * q, through
 * the momentum, step = lr * g, then the rounding of the mode, four weights per step in
 * vector lanes in every mode (stochastic, nearest and "float" on an integer parameter:
 * row_vector; the fp32 shadow and the compact residual: row_state, whose comment has their
 * steps).
 *
 * Helium has no float division: the quotient is tt_update_mve.h's tt_div_mve (fused
 * multiply-add corrections of a * (1 / s), correctly rounded by Markstein's theorem), from
 * y = 1 / s (one scalar VDIV per row); the rounding is its tt_qas_round4_mve. Every other
 * operation is the reference's, one IEEE single rounding each (-ffp-contract=off there).
 *
 * Helium flushes subnormals, the scalar FPU does not: a row takes the vector path only where
 * none can arise. s in [2^-40, 2^40), d = 0 or |d| in [2^-70, 2^40) with |d| / s >= 2^-70,
 * lr and the momentum factor 0 or in [2^-20, 2^20), wd 0 or in [2^-40, 2^40): then every
 * nonzero A, quotient, residual r (a multiple of 2^(e_A - 47)) and g + wd * q (a multiple of
 * 2^-94) is normal. Without momentum the row's bound lr * (256 |d| / s + 128 |wd|) must lie
 * below 2^19 (then every |step| < 2^20, tt_update_fast.h's int32 rounding), and the sign of
 * a zero g cannot reach the weights (the roundings of +0 and -0 agree), so the zero select
 * and, with wd = 0, the weight decay term are left out. With momentum, per four weights the
 * old momentum must be 0 or in [2^-60, 2^60) (then mu * m + g is a multiple of 2^-117), the
 * new one 0 or in [2^-100, 2^100) (then lr * m is normal), and |step| < 2^20, checked on the
 * bit patterns with saturating integer arithmetic; four weights failing a check take the
 * _dsp variant's scalar arithmetic (nothing was written yet), a row failing one all of them,
 * and the last 1-3 weights of a row too.
 *
 * Instructions per weight on the Cortex-M55 (bench/bench_kernels.py, 160 x 100):
 * stochastic 18, nearest 14, residual 29, shadow 24; the _dsp variant's: 69, 52, 67, 50.
 *
 * The draws: element e draws hash(state + (e + 1) * gamma) (tt_rng_uniform), four counters
 * in a vector, the hash in integer lanes, the uniform as (h >> 8) * 2^-24 (exact). */
#include <math.h>
#include <string.h>
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_update_fast.h"
#include "tt_kernels_simd.h"
#include "tt_update_mve.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* What one row (of at most TT_FC_CHUNK weights) reads. */
typedef struct {
    int8_t *wr;                 /* the row's weights (trained channel j at index[j], or j) */
    const int32_t *index;
    const float *xf;            /* x - zp, as floats */
    int32_t n, e0, mode;
    float d, scale, y, lr, mu, wd;
    float *m;                   /* momentum (NULL: none), at e0 */
    float *shadow;              /* the mode's state at e0 (or NULL) */
    int8_t *res;
    const tt_rng *rng;
} fc_row;

/* Elements j0 .. j1-1 of the row, the _dsp variant's scalar way. */
static void scalar_elems(const fc_row *r, int32_t j0, int32_t j1)
{
    int32_t j;
    for (j = j0; j < j1; ++j) {
        int8_t *wp = r->wr + (r->index ? r->index[j] : j);
        const int32_t q = *wp;
        float *m = r->m ? r->m + j : 0;
        const float a = r->d * r->xf[j];
        if (r->mode == TT_UPDATE_SHADOW) {
            const float step = tt_qas_step_of(r->shadow[j], a, r->scale, r->lr, r->mu, r->wd, m);
            *wp = (int8_t)tt_qas_shadow_step_fast(q, &r->shadow[j], step, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        } else if (r->mode == TT_UPDATE_RESIDUAL) {
            const float v = (float)q + (float)r->res[j] * 0x1p-8f;
            const float step = tt_qas_step_of(v, a, r->scale, r->lr, r->mu, r->wd, m);
            *wp = (int8_t)tt_qas_residual_step_fast(q, &r->res[j], step, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        } else {
            const float step = tt_qas_step_of((float)q, a, r->scale, r->lr, r->mu, r->wd, m);
            *wp = (int8_t)(r->mode == TT_UPDATE_STOCHASTIC
                               ? tt_qas_round_stochastic_fast(q, step, tt_rng_uniform(r->rng, r->e0 + j), TT_QAS_S8_MIN,
                                                              TT_QAS_S8_MAX)
                               : tt_qas_round_exact_fast(q, step, TT_QAS_S8_MIN, TT_QAS_S8_MAX));
        }
    }
}

/* The row's full groups of four weights in vectors (the last 1-3 weights, and any four
 * failing a check, the scalar way). STOCH: stochastic rounding (else nearest); MOM: with
 * momentum, whose values are checked per four weights (without, the row's bound on |step|
 * was checked by the caller, and the sign of a zero g cannot reach the weights: the
 * roundings of +0 and -0 agree, so neither the zero select nor, with wd = 0, the weight
 * decay term is needed). Forced inline into one function per (STOCH, MOM). */
static inline __attribute__((always_inline)) void row_vector(const fc_row *r, const int STOCH, const int MOM)
{
    const int32_t n4 = r->n & ~3, wd_on = r->wd != 0.0f;
    const float32x4_t sv = vdupq_n_f32(r->scale);
    const float d = r->d, wd = r->wd, lr = r->lr, mu = r->mu;
    int8_t *const wr = r->wr;
    const int32_t *const index = r->index;
    const float *const xf = r->xf;
    float *const mom = r->m;
    const float32x4_t yv = vdupq_n_f32(r->y);
    uint32x4_t ctr = tt_rng_ctr4(STOCH ? r->rng->state : 0u, r->e0);
    int32_t j;
    for (j = 0; j < n4; j += 4, ctr = vaddq_n_u32(ctr, 4u * TT_RNG_GAMMA)) {
        const uint32x4_t idx = index ? vld1q_u32((const uint32_t *)(const void *)(index + j)) : vdupq_n_u32(0u);
        const int32x4_t qv = index ? vldrbq_gather_offset_s32(wr, idx) : vldrbq_s32(wr + j);
        const float32x4_t a = vmulq_n_f32(vld1q_f32(xf + j), d);
        float32x4_t g, mn = vdupq_n_f32(0.0f), step;
        int32x4_t m;
        if (MOM) {
            const float32x4_t mo = vld1q_f32(mom + j);
            uint32x4_t bad;
            g = tt_div_mve_signed(a, sv, yv);
            g = vaddq_f32(g, vmulq_n_f32(vcvtq_f32_s32(qv), wd));
            mn = vaddq_f32(vmulq_n_f32(mo, mu), g);
            step = vmulq_n_f32(mn, lr);
            bad = vorrq_u32(vorrq_u32(tt_outside_mve(mo, -60, 60), tt_outside_mve(mn, -100, 100)),
                            tt_step_large_mve(step));
            if (vmaxvq_u32(0u, bad)) {
                scalar_elems(r, j, j + 4);
                continue;
            }
        } else {
            g = tt_div_mve(a, sv, yv);
            if (wd_on) g = vaddq_f32(g, vmulq_n_f32(vcvtq_f32_s32(qv), wd));
            step = vmulq_n_f32(g, lr);
        }
        m = tt_qas_round4_mve(step, qv, ctr, STOCH);
        if (MOM) vst1q_f32(mom + j, mn);
        if (index) vstrbq_scatter_offset_s32(wr, idx, m);
        else vstrbq_s32(wr + j, m);
    }
    scalar_elems(r, n4, r->n);
}

static void __attribute__((noinline)) row_stochastic(const fc_row *r) { row_vector(r, 1, 0); }
static void __attribute__((noinline)) row_nearest(const fc_row *r) { row_vector(r, 0, 0); }
static void __attribute__((noinline)) row_stochastic_mom(const fc_row *r) { row_vector(r, 1, 1); }
static void __attribute__((noinline)) row_nearest_mom(const fc_row *r) { row_vector(r, 0, 1); }

/* The shadow and residual modes, four weights at a time: the same rule, the value weight
 * decay reads being the shadow (checked: 0 or in [2^-40, 2^8)) or q + r / 256 (0 or at
 * least 2^-8); per four weights |step| must be 0 or in [2^-100, 2^12) (then shadow - step
 * is 0 or normal, and 256 step < 2^20: tt_update_fast.h's int32 path), with momentum its
 * checks too. Shadow: clamp(shadow - step) to [-127, 127] (VMAXNM / VMINNM), q the nearest
 * integer, halves away from zero (VCVTA). Residual: v = 256 q + r - floor(256 step), down by
 * one if the fraction is > 1/2, or = 1/2 with v < 1, clamped, q = floor((v + 128) / 256)
 * (an arithmetic shift), r = v - 256 q. SHADOW: that mode, else residual. */
static inline __attribute__((always_inline)) void row_state(const fc_row *r, const int SHADOW, const int MOM)
{
    const int32_t n4 = r->n & ~3;
    const float32x4_t sv = vdupq_n_f32(r->scale), yv = vdupq_n_f32(r->y);
    const float d = r->d, wd = r->wd, lr = r->lr, mu = r->mu;
    int8_t *const wr = r->wr;
    const int32_t *const index = r->index;
    int32_t j;
    for (j = 0; j < n4; j += 4) {
        const uint32x4_t idx = index ? vld1q_u32((const uint32_t *)(const void *)(index + j)) : vdupq_n_u32(0u);
        const int32x4_t qv = index ? vldrbq_gather_offset_s32(wr, idx) : vldrbq_s32(wr + j);
        const float32x4_t a = vmulq_n_f32(vld1q_f32(r->xf + j), d);
        const float32x4_t sh = SHADOW ? vld1q_f32(r->shadow + j) : vdupq_n_f32(0.0f);
        const int32x4_t rv = SHADOW ? vdupq_n_s32(0) : vldrbq_s32(r->res + j);
        const float32x4_t v = SHADOW ? sh : vaddq_f32(vcvtq_f32_s32(qv), vmulq_n_f32(vcvtq_f32_s32(rv), 0x1p-8f));
        float32x4_t g = tt_div_mve_signed(a, sv, yv), mn = vdupq_n_f32(0.0f), step;
        uint32x4_t bad = SHADOW ? tt_outside_mve(sh, -40, 8) : vdupq_n_u32(0u);
        g = vaddq_f32(g, vmulq_n_f32(v, wd));
        if (MOM) {
            const float32x4_t mo = vld1q_f32(r->m + j);
            mn = vaddq_f32(vmulq_n_f32(mo, mu), g);
            bad = vorrq_u32(bad, vorrq_u32(tt_outside_mve(mo, -60, 60), tt_outside_mve(mn, -100, 100)));
            g = mn;
        }
        step = vmulq_n_f32(g, lr);
        bad = vorrq_u32(bad, tt_outside_mve(step, -100, 12));
        if (vmaxvq_u32(0u, bad)) {
            scalar_elems(r, j, j + 4);
            continue;
        }
        if (SHADOW) {
            const float32x4_t nv = vminnmq_f32(vmaxnmq_f32(vsubq_f32(sh, step), vdupq_n_f32((float)TT_QAS_S8_MIN)),
                                               vdupq_n_f32((float)TT_QAS_S8_MAX));
            const int32x4_t m = vcvtaq_s32_f32(nv);
            vst1q_f32(r->shadow + j, nv);
            if (index) vstrbq_scatter_offset_s32(wr, idx, m);
            else vstrbq_s32(wr + j, m);
        } else {
            const float32x4_t s256 = vmulq_n_f32(step, 256.0f), fl = vrndmq_f32(s256);
            const float32x4_t frac = vsubq_f32(s256, fl);
            int32x4_t vv = vsubq_s32(vaddq_s32(vshlq_n_s32(qv, 8), rv), vcvtq_s32_f32(fl));
            const mve_pred16_t down = vcmpgtq_n_f32(frac, 0.5f) | (vcmpeqq_n_f32(frac, 0.5f) & vcmpltq_n_s32(vv, 1));
            int32x4_t qn;
            vv = vsubq_m_n_s32(vv, vv, 1, down);
            vv = vmaxq_s32(vminq_s32(vv, vdupq_n_s32(TT_QAS_S8_MAX * 256 + 127)), vdupq_n_s32(TT_QAS_S8_MIN * 256 - 128));
            qn = vshrq_n_s32(vaddq_n_s32(vv, 128), 8);
            vstrbq_s32(r->res + j, vsubq_s32(vv, vshlq_n_s32(qn, 8)));
            if (index) vstrbq_scatter_offset_s32(wr, idx, qn);
            else vstrbq_s32(wr + j, qn);
        }
        if (MOM) vst1q_f32(r->m + j, mn);
    }
    scalar_elems(r, n4, r->n);
}

static void __attribute__((noinline)) row_shadow(const fc_row *r) { row_state(r, 1, 0); }
static void __attribute__((noinline)) row_residual(const fc_row *r) { row_state(r, 0, 0); }
static void __attribute__((noinline)) row_shadow_mom(const fc_row *r) { row_state(r, 1, 1); }
static void __attribute__((noinline)) row_residual_mom(const fc_row *r) { row_state(r, 0, 1); }

void tt_fully_connected_update_weight_s8_mve(int32_t out_features, const tt_channels *ch, int8_t *w,
                                             const tt_weight_quant *wq, const int8_t *x,
                                             const tt_act_quant *xq, const float *grad_y,
                                             const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t k = ch->k, mode = u->mode;
    /* the row-independent checks (see the top) */
    const int32_t hp_ok = tt_qas_hparams_ok_mve(u->hp);
    float xf[TT_FC_CHUNK] TT_ALIGNED(16);
    fc_row r;
    int32_t i0, o;
    r.lr = hp.lr;
    r.mu = hp.momentum;
    r.wd = hp.weight_decay;
    r.xf = xf;
    r.rng = u->rng;
    r.mode = mode;
    for (i0 = 0; i0 < k; i0 += TT_FC_CHUNK) {
        r.n = k - i0 < TT_FC_CHUNK ? k - i0 : TT_FC_CHUNK;
        r.index = ch->index ? ch->index + i0 : 0;
        tt_fc_inputs_f32(x + i0, xq->zero_point, r.n, xf);
        for (o = 0; o < out_features; ++o) {
            uint32_t bd, bs;
            r.d = grad_y[o] * xq->scale;
            r.scale = wq->scale[wq->per_channel ? o : 0];
            r.wr = w + o * ch->in_channels + (r.index ? 0 : i0);
            r.e0 = o * k + i0;
            r.m = u->momentum ? u->momentum + r.e0 : 0;
            r.shadow = mode == TT_UPDATE_SHADOW ? u->shadow + r.e0 : 0;
            r.res = mode == TT_UPDATE_RESIDUAL ? u->residual + r.e0 : 0;
            memcpy(&bd, &r.d, 4);
            memcpy(&bs, &r.scale, 4);
            if (hp_ok && tt_qas_scale_ok_mve(r.scale) && tt_zero_or_within(r.d, -70, 40) &&
                (r.d == 0.0f || (int32_t)((bd >> 23) & 0xFFu) - (int32_t)((bs >> 23) & 0xFFu) >= -69)) {
                r.y = 1.0f / r.scale;
                if (mode == TT_UPDATE_SHADOW) {
                    if (r.m) row_shadow_mom(&r);
                    else row_shadow(&r);
                } else if (mode == TT_UPDATE_RESIDUAL) {
                    if (r.m) row_residual_mom(&r);
                    else row_residual(&r);
                } else if (r.m) {
                    if (mode == TT_UPDATE_STOCHASTIC) row_stochastic_mom(&r);
                    else row_nearest_mom(&r);
                } else if (fabsf(r.lr) * (256.0f * fabsf(r.d) * r.y * 1.001f + 128.0f * fabsf(r.wd)) < 0x1p19f) {
                    /* every |step| of the row below 2^20 */
                    if (mode == TT_UPDATE_STOCHASTIC) row_stochastic(&r);
                    else row_nearest(&r);
                } else {
                    scalar_elems(&r, 0, r.n);
                }
            } else {
                scalar_elems(&r, 0, r.n);
            }
        }
    }
    tt_update_advance(u, out_features * k);
}

#endif
