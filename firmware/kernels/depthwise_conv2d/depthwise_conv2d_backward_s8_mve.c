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

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

void tt_depthwise_conv2d_grad_input_s8_mve(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                           const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = out->c, taps = kh * kw;
    float wf[8 * TT_DW_GI_MAX_TAPS] TT_ALIGNED(16), sc[8] TT_ALIGNED(16);
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
        for (oh = 0; oh < out->h; ++oh) {
            for (ow = 0; ow < out->w; ++ow) {
                const float *gy = grad_y + (oh * out->w + ow) * ch + c0;
                /* d = grad_y * scale in the scalar unit, as the reference rounds it */
                float dd[8] TT_ALIGNED(16);
                float32x4_t d0, d1;
                for (j = 0; j < 8; ++j) dd[j] = j < n ? gy[j] * sc[j] : 0.0f;
                d0 = vld1q_f32(dd);
                d1 = vld1q_f32(dd + 4);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        const float *wt = wf + (ky * kw + kx) * 8;
                        float *gx;
                        if (iw < 0 || iw >= in->w) continue;
                        gx = grad_x + (ih * in->w + iw) * in->c + c0;
                        vstrwq_p_f32(gx, vaddq_f32(vldrwq_z_f32(gx, p0), vmulq_f32(d0, vld1q_f32(wt))), p0);
                        vstrwq_p_f32(gx + 4, vaddq_f32(vldrwq_z_f32(gx + 4, p1), vmulq_f32(d1, vld1q_f32(wt + 4))), p1);
                    }
                }
            }
        }
    }
}

#endif
