/* conv2d input gradient of int8 graphs with Helium (Cortex-M55): tt_conv2d_grad_input_s8's
 * result, float for float (declared in tt_kernels_simd.h).
 *
 * The walk of the _dsp variant (tt_grad_input_walk.h: each input gradient element takes the
 * reference's products in the reference's order), with the row's elements in vector
 * lanes: sixteen per pass in four float32x4 registers; per listed output channel four
 * VLDRB.S32 (four int8 weights widened to int32), four VCVT, four VMUL by d (IEEE single
 * rounding per lane, as the scalar code) and four VADD. Then eight more if there are, and
 * the last 1-7 four at a time, the last group tail-predicated.
 *
 * Helium flushes denormals, the scalar FPU does not: where one could arise the call runs
 * the reference (tt_grad_input_vector_safe, tt_kernels_simd.h). */
#include "tt_train_kernels.h"
#include "tt_kernels_simd.h"
#include "tt_grad_input_walk.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

TT_GI_INLINE void row_mve(float *gx, int32_t cin, const tt_gi_list *l, int32_t tap)
{
    const int32_t n = l->n;
    int32_t i, j;
    for (i = 0; i + 16 <= cin; i += 16) {
        float32x4_t a0 = vld1q_f32(gx + i), a1 = vld1q_f32(gx + i + 4);
        float32x4_t a2 = vld1q_f32(gx + i + 8), a3 = vld1q_f32(gx + i + 12);
        for (j = 0; j < n; ++j) {
            const int8_t *wp = l->w[j] + tap + i;
            const float d = l->d[j];
            a0 = vaddq_f32(a0, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp)), d));
            a1 = vaddq_f32(a1, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp + 4)), d));
            a2 = vaddq_f32(a2, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp + 8)), d));
            a3 = vaddq_f32(a3, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp + 12)), d));
        }
        vst1q_f32(gx + i, a0);
        vst1q_f32(gx + i + 4, a1);
        vst1q_f32(gx + i + 8, a2);
        vst1q_f32(gx + i + 12, a3);
    }
    if (i + 8 <= cin) {     /* eight more, unpredicated */
        float32x4_t a0 = vld1q_f32(gx + i), a1 = vld1q_f32(gx + i + 4);
        for (j = 0; j < n; ++j) {
            const int8_t *wp = l->w[j] + tap + i;
            const float d = l->d[j];
            a0 = vaddq_f32(a0, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp)), d));
            a1 = vaddq_f32(a1, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp + 4)), d));
        }
        vst1q_f32(gx + i, a0);
        vst1q_f32(gx + i + 4, a1);
        i += 8;
    }
    for (; i < cin; i += 4) {   /* 1-7 more, four at a time, the last group predicated */
        const mve_pred16_t p = vctp32q((uint32_t)(cin - i));
        float32x4_t a = vldrwq_z_f32(gx + i, p);
        for (j = 0; j < n; ++j) {
            const float32x4_t wf = vcvtq_f32_s32(vldrbq_z_s32(l->w[j] + tap + i, p));
            a = vaddq_f32(a, vmulq_n_f32(wf, l->d[j]));
        }
        vstrwq_p_f32(gx + i, a, p);
    }
}

void tt_conv2d_grad_input_s8_mve(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                 const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    if (!tt_grad_input_vector_safe(s, grad_y, wq, accumulate, grad_x)) {
        tt_conv2d_grad_input_s8(s, grad_y, w, wq, accumulate, grad_x);
        return;
    }
    tt_conv2d_grad_input_walk(s, grad_y, w, wq, accumulate, grad_x, row_mve);
}

#endif
