/* conv2d input gradient of int8 graphs with Helium (Cortex-M55): tt_conv2d_grad_input_s8's
 * result, float for float (declared in tt_kernels_simd.h).
 *
 * The arrangement of tt_conv2d_grad_input_s8_dsp (each input gradient element takes the
 * reference's products in the reference's order, the output channel loop inside the
 * element loop), with the elements in vector lanes: eight per step in two float32x4
 * registers; per output channel two VLDRB.S32 (four int8 weights widened to int32), two
 * VCVT, two VMUL by d (IEEE single rounding per lane, as the scalar code) and two VADD.
 * A last group of 1-7 elements is tail-predicated.
 *
 * Helium flushes denormals, the scalar FPU does not: where one could arise the call runs
 * the reference (tt_grad_input_vector_safe, tt_kernels_simd.h). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

#define TT_GI_CHUNK 64

void tt_conv2d_grad_input_s8_mve(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                 const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, cout = out->c;
    const int32_t o_stride = kh * kw * cin;
    float dv[TT_GI_CHUNK];
    const int8_t *wo[TT_GI_CHUNK];
    int32_t oh, ow, ky, kx, o0, o, n, j, i;
    if (!tt_grad_input_vector_safe(s, grad_y, wq, accumulate, grad_x)) {
        tt_conv2d_grad_input_s8(s, grad_y, w, wq, accumulate, grad_x);
        return;
    }
    tt_zero_unless_f32(grad_x, in->h * in->w * cin, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float *gy = grad_y + (oh * out->w + ow) * cout;
            for (o0 = 0; o0 < cout; o0 += TT_GI_CHUNK) {
                const int32_t o1 = cout - o0 < TT_GI_CHUNK ? cout : o0 + TT_GI_CHUNK;
                n = 0;
                for (o = o0; o < o1; ++o) {
                    const float d = gy[o];
                    if (d == 0.0f) continue;
                    dv[n] = d * wq->scale[wq->per_channel ? o : 0];
                    wo[n] = w + o * o_stride;
                    n++;
                }
                if (n == 0) continue;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        const int32_t tap = (ky * kw + kx) * cin;
                        float *gx;
                        if (iw < 0 || iw >= in->w) continue;
                        gx = grad_x + (ih * in->w + iw) * cin;
                        for (i = 0; i + 8 <= cin; i += 8) {
                            float32x4_t a0 = vld1q_f32(gx + i), a1 = vld1q_f32(gx + i + 4);
                            for (j = 0; j < n; ++j) {
                                const int8_t *wp = wo[j] + tap + i;
                                const float d = dv[j];
                                a0 = vaddq_f32(a0, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp)), d));
                                a1 = vaddq_f32(a1, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(wp + 4)), d));
                            }
                            vst1q_f32(gx + i, a0);
                            vst1q_f32(gx + i + 4, a1);
                        }
                        for (; i < cin; i += 4) {
                            const mve_pred16_t p = vctp32q((uint32_t)(cin - i));
                            float32x4_t a = vldrwq_z_f32(gx + i, p);
                            for (j = 0; j < n; ++j) {
                                const float32x4_t wf = vcvtq_f32_s32(vldrbq_z_s32(wo[j] + tap + i, p));
                                a = vaddq_f32(a, vmulq_n_f32(wf, dv[j]));
                            }
                            vstrwq_p_f32(gx + i, a, p);
                        }
                    }
                }
            }
        }
    }
}

#endif
