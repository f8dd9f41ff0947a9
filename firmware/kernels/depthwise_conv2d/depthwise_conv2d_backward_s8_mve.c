/* depthwise conv2d input gradient of int8 graphs with Helium (Cortex-M55):
 * tt_depthwise_conv2d_grad_input_s8's floats, bit for bit (declared in tt_kernels_simd.h).
 * The arrangement of the _dsp variant (eight channels at a time over the whole window, the
 * weights converted once, d once per pixel) with the eight channels in two float32x4
 * lanes: per tap two loads of grad_x, two VMUL, two VADD, two stores; a last group of 1-7
 * channels is predicated. Where a denormal could arise (Helium flushes them) the call runs
 * the reference (tt_grad_input_vector_safe). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"
#include "tt_window.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

void tt_depthwise_conv2d_grad_input_s8_mve(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                           const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = out->c, taps = kh * kw;
    float wf[8 * TT_DW_GI_MAX_TAPS] TT_ALIGNED(16), sc[8] TT_ALIGNED(16);
    const int32_t sh = g->stride_h, sw = g->stride_w, pt = g->pad_top, pl = g->pad_left;
    const int32_t dh = g->dil_h, dw = g->dil_w, in_h = in->h, in_w = in->w, in_c = in->c;
    float32x4_t s0, s1;
    int32_t c0, n, j, t, oh, ow, ky, kx;
    if (taps > TT_DW_GI_MAX_TAPS || !tt_grad_input_vector_safe(s, grad_y, wq, accumulate, grad_x)) {
        tt_depthwise_conv2d_grad_input_s8(s, grad_y, w, wq, accumulate, grad_x);
        return;
    }
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (c0 = 0; c0 < ch; c0 += 8) {
        const mve_pred16_t p0 = vctp32q((uint32_t)(ch - c0)), p1 = vctp32q((uint32_t)(ch - c0 > 4 ? ch - c0 - 4 : 0));
        n = ch - c0 < 8 ? ch - c0 : 8;
        for (t = 0; t < taps; ++t) {
            for (j = 0; j < n; ++j) wf[t * 8 + j] = (float)w[t * ch + c0 + j];
            for (; j < 8; ++j) wf[t * 8 + j] = 0.0f;
        }
        for (j = 0; j < 8; ++j) sc[j] = j < n ? wq->scale[wq->per_channel ? c0 + j : 0] : 0.0f;
        s0 = vld1q_f32(sc);
        s1 = vld1q_f32(sc + 4);
        for (oh = 0; oh < out->h; ++oh) {
            const int32_t ih0 = oh * sh - pt;
            int32_t ky0, ky1;
            tt_window_taps(ih0, kh, dh, in_h, &ky0, &ky1);
            for (ow = 0; ow < out->w; ++ow) {
                const float *gy = grad_y + (oh * out->w + ow) * ch + c0;
                const int32_t iw0 = ow * sw - pl;
                int32_t kx0, kx1;
                /* d = grad_y * scale: normal operands and a normal product (the guard), so the
                 * vector multiply rounds it as the reference's scalar one */
                const float32x4_t d0 = vmulq_f32(vldrwq_z_f32(gy, p0), s0);
                const float32x4_t d1 = vmulq_f32(vldrwq_z_f32(gy + 4, p1), s1);
                tt_window_taps(iw0, kw, dw, in_w, &kx0, &kx1);
                for (ky = ky0; ky < ky1; ++ky) {
                    float *grow = grad_x + (ih0 + ky * dh) * in_w * in_c + c0;
                    const float *wrow = wf + ky * kw * 8;
                    if (n == 8) {
                        for (kx = kx0; kx < kx1; ++kx) {
                            float *gx = grow + (iw0 + kx * dw) * in_c;
                            const float *wt = wrow + kx * 8;
                            vst1q_f32(gx, vaddq_f32(vld1q_f32(gx), vmulq_f32(d0, vld1q_f32(wt))));
                            vst1q_f32(gx + 4, vaddq_f32(vld1q_f32(gx + 4), vmulq_f32(d1, vld1q_f32(wt + 4))));
                        }
                    } else {
                        for (kx = kx0; kx < kx1; ++kx) {
                            float *gx = grow + (iw0 + kx * dw) * in_c;
                            const float *wt = wrow + kx * 8;
                            vstrwq_p_f32(gx, vaddq_f32(vldrwq_z_f32(gx, p0), vmulq_f32(d0, vld1q_f32(wt))), p0);
                            vstrwq_p_f32(gx + 4, vaddq_f32(vldrwq_z_f32(gx + 4, p1), vmulq_f32(d1, vld1q_f32(wt + 4))),
                                         p1);
                        }
                    }
                }
            }
        }
    }
}

#endif
