/* Half-precision fully connected for Helium (MVE, Cortex-M55): forward and input gradient
 * in half with fused multiply-adds in 8 lanes (the fused update is the portable one: one
 * product per weight). tinytrain/ops/f16.py models them bit for bit:
 * forward      per output, x[i] * w[o][i] into lane i % 8 (the last partial 8 predicated),
 *              then bias + lane 0 + ... + lane 7 in float32, the activation, one rounding.
 * grad input   8 inputs in the lanes: acc = fma over o in order of gy[o] * w[o][i..i+7];
 *              stored as is, or old + acc (one half add) when accumulating.
 * update       the portable kernel's bits (dW[o][j] = gy[o] * x[j] in float32, exact for
 *              halves, then tt_sgd_rule_f16 in row-major order), 8 weights at a time by the
 *              vector rule of tt_update_f16_mve.h in its plain case (x[j] * (gy[o] / scale)
 *              is the same exact float32); rows with a channel index, an odd gy[o] and
 *              blocks with odd operands or results take the scalar rule.
 * Empty where __ARM_FEATURE_MVE is not defined. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_update_f16_mve.h"

void tt_fully_connected_f16_mve(const tt_f16 *x, int32_t in_features, const tt_f16 *w,
                                const tt_f16 *bias, int32_t out_features, int32_t act, tt_f16 *y)
{
    const float16_t *xh = (const float16_t *)x;
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        const float16_t *wp = (const float16_t *)(w + o * in_features);
        float16x8_t acc = vdupq_n_f16(0.0f);
        float s = bias ? tt_h2f(bias[o]) : 0.0f;
        for (i = 0; i < in_features; i += 8) {
            const mve_pred16_t p = vctp16q((uint32_t)(in_features - i));
            acc = vfmaq_m_f16(acc, vldrhq_z_f16(xh + i, p), vldrhq_z_f16(wp + i, p), p);
        }
        s += (float)vgetq_lane_f16(acc, 0);
        s += (float)vgetq_lane_f16(acc, 1);
        s += (float)vgetq_lane_f16(acc, 2);
        s += (float)vgetq_lane_f16(acc, 3);
        s += (float)vgetq_lane_f16(acc, 4);
        s += (float)vgetq_lane_f16(acc, 5);
        s += (float)vgetq_lane_f16(acc, 6);
        s += (float)vgetq_lane_f16(acc, 7);
        y[o] = tt_f2h(tt_act_f16(s, act));
    }
}

void tt_fully_connected_grad_input_f16_mve(int32_t in_features, int32_t out_features,
                                           const tt_f16 *grad_y, const tt_f16 *w,
                                           int32_t accumulate, tt_f16 *grad_x)
{
    const float16_t *gy = (const float16_t *)grad_y;
    float16_t *gx = (float16_t *)grad_x;
    int32_t o, i;
    for (i = 0; i < in_features; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(in_features - i));
        float16x8_t acc = vdupq_n_f16(0.0f);
        for (o = 0; o < out_features; ++o) {
            acc = vfmaq_n_f16(acc, vldrhq_z_f16((const float16_t *)(w + o * in_features + i), p), gy[o]);
        }
        if (accumulate) acc = vaddq_f16(vldrhq_z_f16(gx + i, p), acc);
        vstrhq_p_f16(gx + i, acc, p);
    }
}

void tt_fully_connected_update_weight_f16_mve(int32_t out_features, const tt_channels *ch, tt_f16 *w,
                                              const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    tt_loss_scale *ls = u->ls;
    const int32_t k = ch->k;
    const int plain = !ch->index && tt_sgd_plain_ok(&hp, u);
    const float inv = 1.0f / ls->scale;
    int32_t o, j, i;
    for (o = 0; o < out_features; ++o) {
        const float d = tt_h2f(grad_y[o]);
        const uint16_t dh = grad_y[o] & 0x7FFFu;
        tt_f16 *wr = w + o * ch->in_channels;
        j = 0;
        if (plain && dh < 0x7C00u && (dh >= 0x0400u || dh == 0)) {     /* d zero or normal */
            const float kd = d * inv * 0x1p112f;     /* exact: a half times powers of two */
            for (; j + 8 <= k; j += 8) {
                const uint16x8_t x16 = vld1q_u16(x + j), w16 = vld1q_u16(wr + j);
                if (ls->dynamic && ls->overflow) return;
                if (tt_odd_halves_f16(vandq_u16(x16, vdupq_n_u16(0x7FFFu)), vandq_u16(w16, vdupq_n_u16(0x7FFFu))))
                    goto scalar;
                if (tt_sgd_plain8_f16(wr + j, w16,
                                      vmulq_n_f32(tt_half_raw_f16(vmovlbq_s16(vreinterpretq_s16_u16(x16))), kd),
                                      vmulq_n_f32(tt_half_raw_f16(vmovltq_s16(vreinterpretq_s16_u16(x16))), kd),
                                      hp.lr))
                    continue;
            scalar:
                for (i = j; i < j + 8; ++i) wr[i] = tt_sgd_rule_f16(wr[i], d * tt_h2f(x[i]), &hp, u, o * k + i);
            }
        }
        for (; j < k; ++j) {
            tt_f16 *wp = wr + (ch->index ? ch->index[j] : j);
            *wp = tt_sgd_rule_f16(*wp, d * tt_h2f(x[j]), &hp, u, o * k + j);
        }
    }
}
#endif
