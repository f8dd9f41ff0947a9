/* Half-precision transposed convolution for Helium (MVE, Cortex-M55): forward and input
 * gradient in half with fused multiply-adds (vfmaq_f16) in 8 lanes of input channels (the
 * weights OHWI keep them contiguous: no scratch). tinytrain/ops/f16.py models them bit for
 * bit (`transpose_conv_mve`, `transpose_conv_grad_input_mve`):
 * forward      per output element, over the taps (ky, kx) that reach it in that order:
 *              x[i] * w[o][ky][kx][i] into lane i % 8 (a last partial 8 predicated: the other
 *              lanes keep their value), then bias + lane 0 + ... + lane 7 in float32, the
 *              activation, one rounding (the fully connected forward's reduction).
 * grad input   8 input channels in the lanes: acc = fma over ky, kx, o (in that order) of
 *              gy[o] * w[o][ky][kx][i..i+7]; stored as is, or old + acc (one half add) when
 *              accumulating.
 * Empty where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

/* The input index that output index o reads through tap t along one axis, or -1. */
static inline int32_t tap_source(int32_t o, int32_t t, int32_t stride, int32_t pad, int32_t n_in)
{
    const int32_t num = o + pad - t;
    if (num < 0 || num % stride) return -1;
    return num / stride < n_in ? num / stride : -1;
}

void tt_transpose_conv_f16_mve(const tt_f16 *x, const tt_dims *in,
                               const tt_f16 *w, const tt_f16 *bias, int32_t kh, int32_t kw,
                               const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    const int32_t cin = in->c;
    const float16_t *xh = (const float16_t *)x, *wh = (const float16_t *)w;
    int32_t oy, ox, o, ky, kx, i;
    for (oy = 0; oy < out->h; ++oy) {
        for (ox = 0; ox < out->w; ++ox) {
            tt_f16 *yp = y + (oy * out->w + ox) * out->c;
            for (o = 0; o < out->c; ++o) {
                float16x8_t acc = vdupq_n_f16(0.0f);
                float s = bias ? tt_h2f(bias[o]) : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t iy = tap_source(oy, ky, g->stride_h, g->pad_top, in->h);
                    if (iy < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ix = tap_source(ox, kx, g->stride_w, g->pad_left, in->w);
                        const float16_t *xp, *wp;
                        if (ix < 0) continue;
                        xp = xh + (iy * in->w + ix) * cin;
                        wp = wh + ((o * kh + ky) * kw + kx) * cin;
                        for (i = 0; i < cin; i += 8) {
                            const mve_pred16_t p = vctp16q((uint32_t)(cin - i));
                            acc = vfmaq_m_f16(acc, vldrhq_z_f16(xp + i, p), vldrhq_z_f16(wp + i, p), p);
                        }
                    }
                }
                s += (float)vgetq_lane_f16(acc, 0);
                s += (float)vgetq_lane_f16(acc, 1);
                s += (float)vgetq_lane_f16(acc, 2);
                s += (float)vgetq_lane_f16(acc, 3);
                s += (float)vgetq_lane_f16(acc, 4);
                s += (float)vgetq_lane_f16(acc, 5);
                s += (float)vgetq_lane_f16(acc, 6);
                s += (float)vgetq_lane_f16(acc, 7);
                yp[o] = tt_f2h(tt_act_f16(s, act));
            }
        }
    }
}

void tt_transpose_conv_grad_input_f16_mve(const tt_f16 *grad_y, const tt_dims *out,
                                          const tt_f16 *w, int32_t kh, int32_t kw, const tt_geom *g,
                                          int32_t accumulate, tt_f16 *grad_x, const tt_dims *in)
{
    const int32_t cin = in->c, wo = kh * kw * cin;
    const float16_t *gyh = (const float16_t *)grad_y, *wh = (const float16_t *)w;
    float16_t *gxh = (float16_t *)grad_x;
    int32_t iy, ix, i, ky, kx, o;
    for (iy = 0; iy < in->h; ++iy) {
        for (ix = 0; ix < in->w; ++ix) {
            float16_t *gx = gxh + (iy * in->w + ix) * cin;
            for (i = 0; i < cin; i += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(cin - i));
                float16x8_t acc = vdupq_n_f16(0.0f);
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oy = iy * g->stride_h - g->pad_top + ky;
                    if (oy < 0 || oy >= out->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ox = ix * g->stride_w - g->pad_left + kx;
                        const float16_t *gy, *wp;
                        if (ox < 0 || ox >= out->w) continue;
                        gy = gyh + (oy * out->w + ox) * out->c;
                        wp = wh + (ky * kw + kx) * cin + i;
                        for (o = 0; o < out->c; ++o, wp += wo)
                            acc = vfmaq_n_f16(acc, vldrhq_z_f16(wp, p), gy[o]);
                    }
                }
                if (accumulate) acc = vaddq_f16(vldrhq_z_f16(gx + i, p), acc);
                vstrhq_p_f16(gx + i, acc, p);
            }
        }
    }
}
#endif
