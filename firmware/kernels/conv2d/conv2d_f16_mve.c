/* Half-precision conv2d for Helium (MVE, Cortex-M55): forward, input gradient and the fused
 * weight update, computing in half with fused multiply-adds (vfmaq_n_f16: one rounding per
 * multiply-add) in 8 lanes. The loops are tt_conv2d_mve_body.h's (shared with
 * conv2d_f32_mve.c); tinytrain/ops/f16.py (`conv2d_mve`, ...) models them bit for bit:
 *
 * forward      output channels in the lanes (the block's weights copied tap-major into the
 *              scratch: tt_conv2d_f16_mve_scratch_bytes): per output acc = bias (half), then
 *              acc = fma(x, w, acc) over the taps inside the input in (ky, kx, i) order, then
 *              the activation on the half (`v < 0 -> 0`, relu6 `v > 6 -> 6`).
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
#include "tt_update_f16_mve.h"

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

/* The plain rule (fp16 weights, no momentum, no weight decay: the usual case), lighter
 * (tt_update_f16_mve.h); 0 when the update asks for more (sgd_block's general loop). */
static int sgd_plain(tt_f16 *w, const float16_t *gw, int32_t n, const tt_hparams *hp, const tt_update *u,
                     int32_t e0)
{
    tt_loss_scale *ls = u->ls;
    const float inv = 1.0f / ls->scale, lr = hp->lr;
    const float kg = inv * 0x1p112f;
    int32_t i = 0, j;
    if (!tt_sgd_plain_ok(hp, u)) return 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t g16 = vld1q_u16((const uint16_t *)(gw + i));
        const uint16x8_t w16 = vld1q_u16((const uint16_t *)(w + i));
        const uint16x8_t ag = vandq_u16(g16, vdupq_n_u16(0x7FFFu)), aw = vandq_u16(w16, vdupq_n_u16(0x7FFFu));
        if (ls->dynamic && ls->overflow) return 1;
        /* inf / NaN: max >= 0x7C00; subnormal: a - 1 < 0x3FF (a zero wraps to 0xFFFF) */
        if (tt_odd_halves_f16(ag, aw)) goto scalar;
        if (!tt_sgd_plain8_f16(w + i, w16, vmulq_n_f32(tt_half_raw_f16(vmovlbq_s16(vreinterpretq_s16_u16(g16))), kg),
                               vmulq_n_f32(tt_half_raw_f16(vmovltq_s16(vreinterpretq_s16_u16(g16))), kg), lr))
            goto scalar;
        continue;
    scalar:
        for (j = i; j < i + 8; ++j) w[j] = tt_sgd_rule_f16(w[j], (float)gw[j], hp, u, e0 + j);
    }
    for (; i < n; ++i) w[i] = tt_sgd_rule_f16(w[i], (float)gw[i], hp, u, e0 + i);
    return 1;
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
    if (sgd_plain(w, gw, n, hp, u, e0)) return;
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


#define TT_T float16_t
#define TT_W tt_f16
#define TT_V float16x8_t
#define TT_LANES 8
#define TT_CTP(n) vctp16q(n)
#define TT_LD(p) vld1q_f16(p)
#define TT_LDZ(p, m) vldrhq_z_f16(p, m)
#define TT_STP(p, v, m) vstrhq_p_f16(p, v, m)
#define TT_DUP(s) vdupq_n_f16((float16_t)(s))
#define TT_S float16_t
#define TT_LDS(p) (*(p))
#define TT_FMAN(a, v, s) vfmaq_n_f16(a, v, s)
#define TT_ADD(a, b) vaddq_f16(a, b)
#define TT_LT0(v) vcmpgtq_f16(vdupq_n_f16(0.0f), v)
#define TT_GT6(v) vcmpgtq_n_f16(v, (float16_t)6.0f)
#define TT_SEL(a, b, m) vpselq_f16(a, b, m)
#define TT_RULE(w, g, hp, u, e) tt_sgd_rule_f16(w, (float)(g), hp, u, e)
#include "tt_conv2d_mve_body.h"

void tt_conv2d_f16_mve(const tt_f16 *x, const tt_dims *in, const tt_f16 *w, const tt_f16 *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, tt_f16 *y,
                       const tt_dims *out, void *scratch)
{
    conv_forward((const float16_t *)x, in, (const float16_t *)w, (const float16_t *)bias, kh, kw, g, act,
                 (float16_t *)y, out, (float16_t *)scratch);
}

void tt_conv2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y, const tt_f16 *w,
                                  int32_t accumulate, tt_f16 *grad_x)
{
    conv_grad_input(s, (const float16_t *)grad_y, (const float16_t *)w, accumulate, (float16_t *)grad_x);
}

void tt_conv2d_update_weight_f16_mve(const tt_conv_shape *s, const tt_channels *ch, tt_f16 *w,
                                     const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u,
                                     float *scratch)
{
    conv_update_weight(s, ch, w, (const float16_t *)x, (const float16_t *)grad_y, u, (float16_t *)scratch);
}
#endif
