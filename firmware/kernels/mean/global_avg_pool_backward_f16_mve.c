/* Helium variant (MVE, Cortex-M55) of tt_global_avg_pool_grad_input_f16
 * (global_avg_pool_backward_f16.c), the same bits. v = grad_y[c] / (H * W) in float32 is
 * computed per channel in scalar, as there. Stored: half(v) is the same for every pixel of a
 * channel, so the first pixel's row is computed and copied to the others, 8 halves a vector.
 * Accumulated: half(old + v) in float32 lanes (4 channels a vector, v in the lanes); old is
 * widened and the float32 sum narrowed to half by integer operations (tt_f16_sum_mve.h: no
 * VCVTB/VCVTT), bit for bit tt_h2f and tt_f2h. No float32 value is subnormal: old is 0 or at
 * least 2^-24, v is 0 or at least 2^-24 / (H * W) >= 2^-55 (a nonzero half over fewer than
 * 2^31 pixels), so old + v is 0 or a multiple of v's ulp >= 2^-78. An inf or NaN anywhere in
 * grad_y or the old gradients sends the call to the portable kernel (MVE arithmetic returns
 * the default NaN, the scalar code keeps the payload). Empty where __ARM_FEATURE_MVE & 2 is
 * not set. */
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_f16_sum_mve.h"

static inline float value_of(const tt_f16 *grad_y, int32_t c, int32_t pixels)
{
    return tt_h2f(grad_y[c]) / (float)pixels;
}

/* old + v for the channels [c0, c0 + n), n <= 16, of every pixel (old and v finite) */
static void accumulate_block(int32_t pixels, int32_t channels, int32_t c0, int32_t n, const float *v,
                             tt_f16 *grad_x)
{
    const uint32x4_t m15 = vdupq_n_u32(0x7FFFu), inf16 = vdupq_n_u32(0x7C00u);
    int32_t p, c;
    for (p = 0; p < pixels; ++p) {
        tt_f16 *gx = grad_x + p * channels + c0;
        for (c = 0; c < n; c += 4) {
            const mve_pred16_t t = vctp32q((uint32_t)(n - c));
            const uint32x4_t u = vldrhq_z_u32(gx + c, t);
            const uint32x4_t a = vandq_u32(u, m15);
            vstrhq_p_u32(gx + c, tt_narrow_f16_mve(vaddq_f32(tt_widen_f16_mve(u, a), vld1q_f32(v + c)), inf16), t);
        }
    }
}

void tt_global_avg_pool_grad_input_f16_mve(const tt_dims *in, const tt_f16 *grad_y,
                                           int32_t accumulate, tt_f16 *grad_x)
{
    const int32_t pixels = in->h * in->w, channels = in->c;
    int32_t p, c;
    if (accumulate) {
        float v[16];
        int32_t l, n;
        if ((tt_scan_f16_mve(grad_y, channels) | tt_scan_f16_mve(grad_x, pixels * channels)) & TT_F16_INF_NAN) {
            tt_global_avg_pool_grad_input_f16(in, grad_y, accumulate, grad_x);
            return;
        }
        for (c = 0; c < channels; c += 16) {
            n = channels - c < 16 ? channels - c : 16;
            for (l = 0; l < n; ++l) v[l] = value_of(grad_y, c + l, pixels);
            accumulate_block(pixels, channels, c, n, v, grad_x);
        }
        return;
    }
    for (c = 0; c < channels; ++c) grad_x[c] = tt_f2h(value_of(grad_y, c, pixels));
    for (p = 1; p < pixels; ++p) {
        tt_f16 *gx = grad_x + p * channels;
        for (c = 0; c < channels; c += 8) {
            const mve_pred16_t t = vctp16q((uint32_t)(channels - c));
            vstrhq_p_u16(gx + c, vldrhq_z_u16(grad_x + c, t), t);
        }
    }
}
#endif
