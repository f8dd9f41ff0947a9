/* fully connected backward of int8 graphs with Helium (Cortex-M55): the input and weight
 * gradients of tt_fully_connected_grad_input_s8 / _grad_weight_s8, float for float
 * (declared in tt_kernels_simd.h; the weight update runs the _dsp variant there).
 *
 * - grad_input: tt_conv2d_grad_input_s8_mve on a 1x1 shape of one pixel (its comment says
 *   why the floats are the reference's, and where it runs the reference instead).
 * - grad_weight: each element is one product d_o * (x_i - zp) (plus its old value when
 *   accumulating), four lanes at a time, the inputs converted to float once per TT_FC_CHUNK.
 *   Helium flushes denormals (its float instructions run with the standard FPSCR value),
 *   the scalar FPU does not, so a row takes the vector path only where none can arise: d is
 *   0 or normal (then every nonzero product, d times an integer, is at least 2^-126), and,
 *   accumulating, d is 0 or at least 2^-103 and so is every old value (then each one and
 *   each sum is a multiple of 2^-126: the argument of tt_kernels_simd.h's grad-input
 *   checks); NaN and infinity take the scalar path too (Helium's default NaN). A row
 *   failing that runs the reference's scalar arithmetic. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

void tt_fully_connected_grad_input_s8_mve(int32_t in_features, int32_t out_features,
                                          const float *grad_y, const int8_t *w,
                                          const tt_weight_quant *wq, int32_t accumulate,
                                          float *grad_x)
{
    struct tt_fc_conv c;
    tt_conv2d_grad_input_s8_mve(tt_fc_as_conv(&c, in_features, out_features), grad_y, w, wq, accumulate, grad_x);
}

/* The biased exponent of f (0: zero or denormal, 255: infinity or NaN). */
static inline uint32_t exponent_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (b >> 23) & 0xFFu;
}

static inline int32_t is_zero(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (b & 0x7FFFFFFFu) == 0u;
}

/* tt_gi_all_safe out of line: inlined into the loop below it crashes arm-none-eabi-gcc 12's
 * combine pass (an internal compiler error). */
static int32_t __attribute__((noinline)) all_safe(const float *v, int32_t n, uint32_t lo)
{
    return tt_gi_all_safe(v, n, lo, 254u);
}

void tt_fully_connected_grad_weight_s8_mve(int32_t out_features, const tt_channels *ch,
                                           const int8_t *x, const tt_act_quant *xq,
                                           const float *grad_y, int32_t accumulate, float *grad_w)
{
    const int32_t k = ch->k;
    /* the smallest exponent of a safe d (and, accumulating, of a safe old value) */
    const uint32_t lo = accumulate ? 127u - 103u : 1u;
    float xf[TT_FC_CHUNK];
    int32_t i0, o, i;
    for (i0 = 0; i0 < k; i0 += TT_FC_CHUNK) {
        const int32_t n = k - i0 < TT_FC_CHUNK ? k - i0 : TT_FC_CHUNK;
        tt_fc_inputs_f32(x + i0, xq->zero_point, n, xf);
        for (o = 0; o < out_features; ++o) {
            const float d = grad_y[o] * xq->scale;
            const uint32_t ed = exponent_of(d);
            float *gp = grad_w + o * k + i0;
            if ((!is_zero(d) && (ed < lo || ed > 254u)) || (accumulate && !all_safe(gp, n, lo))) {
                for (i = 0; i < n; ++i) gp[i] = accumulate ? gp[i] + d * xf[i] : d * xf[i];   /* the reference's */
                continue;
            }
            if (accumulate) {
                for (i = 0; i + 4 <= n; i += 4) {
                    vst1q_f32(gp + i, vaddq_f32(vld1q_f32(gp + i), vmulq_n_f32(vld1q_f32(xf + i), d)));
                }
            } else {
                for (i = 0; i + 8 <= n; i += 8) {
                    vst1q_f32(gp + i, vmulq_n_f32(vld1q_f32(xf + i), d));
                    vst1q_f32(gp + i + 4, vmulq_n_f32(vld1q_f32(xf + i + 4), d));
                }
                for (; i + 4 <= n; i += 4) vst1q_f32(gp + i, vmulq_n_f32(vld1q_f32(xf + i), d));
            }
            if (i < n) {      /* the last 1-3, tail-predicated */
                const mve_pred16_t p = vctp32q((uint32_t)(n - i));
                float32x4_t v = vmulq_n_f32(vldrwq_z_f32(xf + i, p), d);
                if (accumulate) v = vaddq_f32(vldrwq_z_f32(gp + i, p), v);
                vstrwq_p_f32(gp + i, v, p);
            }
        }
    }
}

#endif /* __ARM_FEATURE_MVE */
