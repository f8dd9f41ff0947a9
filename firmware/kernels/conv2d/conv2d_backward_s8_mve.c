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
 * Helium's float instructions run with the standard FPSCR value (denormals flushed to
 * zero), the scalar FPU does not: the vector path only runs where no denormal can arise.
 * If every nonzero d * scale and (accumulating) every nonzero grad_x element has a
 * magnitude in [2^-103, FLT_MAX], every product and every running sum is a multiple of
 * 2^-126 (a float of magnitude >= 2^-103 has an ulp >= 2^-126, an exact sum below 2^-103
 * of such multiples is representable), so each nonzero value is at least 2^-126: normal.
 * Otherwise (a pre-pass over grad_y and grad_x decides) the call runs the reference. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#include <string.h>

#define TT_GI_CHUNK 64

/* The checks read exponent fields as integers: a float compare could itself be
 * vectorised, and would then see denormals as zeros. */
static int32_t tt_gi_exponent(float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return (int32_t)((b >> 23) & 0xFFu);
}

static int32_t tt_gi_is_zero(float v)    /* +0 or -0 (a denormal is not) */
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return (b & 0x7FFFFFFFu) == 0u;
}

/* v is 0, or normal with a magnitude in [2^-103, FLT_MAX] */
static int32_t tt_gi_lane_safe(float v)
{
    const int32_t e = tt_gi_exponent(v);
    return tt_gi_is_zero(v) || (e >= 127 - 103 && e < 255);
}

/* d * scale, for normal nonzero d and scale, has a magnitude in [2^-103, FLT_MAX]:
 * |d| * |scale| >= 2^(ed - 127 + es - 127) and < 2^(ed - 126 + es - 126). */
static int32_t tt_gi_product_safe(float d, float scale)
{
    const int32_t ed = tt_gi_exponent(d), es = tt_gi_exponent(scale);
    return ed >= 1 && es >= 1 && ed < 255 && es < 255 && ed + es - 254 >= -103 && ed + es - 252 <= 127;
}

static int32_t tt_gi_vector_safe(const tt_conv_shape *s, const float *grad_y, const tt_weight_quant *wq,
                                 int32_t accumulate, const float *grad_x)
{
    const int32_t pixels = s->out->h * s->out->w, cout = s->out->c;
    int32_t p, o;
    for (p = 0; p < pixels; ++p)
        for (o = 0; o < cout; ++o) {
            const float d = grad_y[p * cout + o];
            if (!tt_gi_is_zero(d) && !tt_gi_product_safe(d, wq->scale[wq->per_channel ? o : 0])) return 0;
        }
    if (accumulate) {
        const int32_t n = s->in->h * s->in->w * s->in->c;
        for (p = 0; p < n; ++p)
            if (!tt_gi_lane_safe(grad_x[p])) return 0;
    }
    return 1;
}

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
    if (!tt_gi_vector_safe(s, grad_y, wq, accumulate, grad_x)) {
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
