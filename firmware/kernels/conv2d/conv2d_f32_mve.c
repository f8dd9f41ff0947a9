/* Float32 conv2d for Helium (MVE, Cortex-M55): forward, input gradient and fused weight
 * update with vfmaq_n_f32: the loops of tt_conv2d_mve_body.h, shared with conv2d_f16_mve.c
 * (4 float lanes instead of 8 half ones: 16 channels in the four accumulators instead of 32).
 * The FP32 Helium baseline of bench/bench_fp16.py: no op unit asks for it, since a float32
 * training build must equal its host build (unfused, -ffp-contract=off), which fused
 * multiply-adds do not. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

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


#define TT_T float
#define TT_W float
#define TT_V float32x4_t
#define TT_LANES 4
#define TT_CTP(n) vctp32q(n)
#define TT_LD(p) vld1q_f32(p)
#define TT_LDZ(p, m) vldrwq_z_f32(p, m)
#define TT_STP(p, v, m) vstrwq_p_f32(p, v, m)
#define TT_DUP(s) vdupq_n_f32((float)(s))
#define TT_S float
#define TT_LDS(p) (*(p))
#define TT_FMAN(a, v, s) vfmaq_n_f32(a, v, s)
#define TT_ADD(a, b) vaddq_f32(a, b)
#define TT_LT0(v) vcmpgtq_f32(vdupq_n_f32(0.0f), v)
#define TT_GT6(v) vcmpgtq_n_f32(v, 6.0f)
#define TT_SEL(a, b, m) vpselq_f32(a, b, m)
#define TT_RULE(w, g, hp, u, e) tt_sgd_rule(w, g, hp, u, e)
#include "tt_conv2d_mve_body.h"

void tt_conv2d_f32_mve(const float *x, const tt_dims *in, const float *w, const float *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, float *y,
                       const tt_dims *out, void *scratch)
{
    conv_forward(x, in, w, bias, kh, kw, g, act, y, out, (float *)scratch);
}

void tt_conv2d_grad_input_f32_mve(const tt_conv_shape *s, const float *grad_y, const float *w,
                                  int32_t accumulate, float *grad_x)
{
    conv_grad_input(s, grad_y, w, accumulate, grad_x);
}

void tt_conv2d_update_weight_f32_mve(const tt_conv_shape *s, const tt_channels *ch, float *w,
                                     const float *x, const float *grad_y, const tt_update *u,
                                     float *scratch)
{
    conv_update_weight(s, ch, w, x, grad_y, u, scratch);
}
#endif
