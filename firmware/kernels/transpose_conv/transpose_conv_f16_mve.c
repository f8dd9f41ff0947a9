/* Half-precision transposed convolution for Helium (MVE, Cortex-M55): forward and input
 * gradient in half with fused multiply-adds (vfmaq_f16) in 8 lanes. tinytrain/ops/f16.py
 * models them bit for bit (`transpose_conv_mve`, `transpose_conv_grad_input_mve`):
 * forward      output channels in the lanes: the weights of a block of up to 32 output
 *              channels are copied tap-major into the scratch (wt[(ky, kx, i)][o], zero past
 *              the layer's channels; f16.conv2d_f16_mve_scratch_bytes: conv2d's layout); per
 *              output pixel acc = bias (half), then for each tap (ky, kx) that reaches it and
 *              each input channel i, in that order, acc = fma(x[i], wt[(ky, kx, i)], acc) (one
 *              rounding each), then the activation on the half value.
 * grad input   8 input channels in the lanes (the OHWI rows are contiguous in them): acc =
 *              fma over ky, kx, o (in that order) of gy[o] * w[o][ky][kx][i..i+7]; stored as
 *              is, or old + acc (one half add) when accumulating.
 * A last partial 8 channels is predicated. Empty where __ARM_FEATURE_MVE & 2 is not set. */
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

#define TC_BLOCK 32      /* output channels per pass: four vectors */

static inline float16x8_t act_f16(float16x8_t v, int32_t act)
{
    if (act == 0) return v;
    v = vpselq_f16(vdupq_n_f16(0.0f), v, vcmpgtq_f16(vdupq_n_f16(0.0f), v));   /* 0 > v: false for a NaN */
    if (act == 2) v = vpselq_f16(vdupq_n_f16(6.0f), v, vcmpgtq_n_f16(v, 6.0f));
    return v;
}

void tt_transpose_conv_f16_mve(const tt_f16 *x, const tt_dims *in,
                               const tt_f16 *w, const tt_f16 *bias, int32_t kh, int32_t kw,
                               const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out,
                               void *scratch)
{
    const int32_t cin = in->c, cout = out->c, taps = kh * kw * cin;
    const float16_t *xh = (const float16_t *)x;
    float16_t *wt = (float16_t *)scratch, *yh = (float16_t *)y;
    int32_t o0, nb, bs, nv, e, j, oy, ox, ky, kx, i, v;
    for (o0 = 0; o0 < cout; o0 += nb) {
        nb = cout - o0 < TC_BLOCK ? cout - o0 : TC_BLOCK;
        nv = (nb + 7) / 8;
        bs = 8 * nv;                                       /* halves per tap row of wt */
        for (e = 0; e < taps; ++e)
            for (j = 0; j < bs; ++j) wt[e * bs + j] = j < nb ? ((const float16_t *)w)[(o0 + j) * taps + e] : 0;
        for (oy = 0; oy < out->h; ++oy) {
            for (ox = 0; ox < out->w; ++ox) {
                float16x8_t acc[4];
                mve_pred16_t p[4];
                for (v = 0; v < nv; ++v) {
                    p[v] = vctp16q((uint32_t)(nb - 8 * v));
                    acc[v] = bias ? vldrhq_z_f16((const float16_t *)bias + o0 + 8 * v, p[v]) : vdupq_n_f16(0.0f);
                }
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t iy = tap_source(oy, ky, g->stride_h, g->pad_top, in->h);
                    if (iy < 0) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ix = tap_source(ox, kx, g->stride_w, g->pad_left, in->w);
                        const float16_t *xp, *wp;
                        if (ix < 0) continue;
                        xp = xh + (iy * in->w + ix) * cin;
                        wp = wt + (ky * kw + kx) * cin * bs;
                        for (i = 0; i < cin; ++i, wp += bs) {
                            const float16_t xv = xp[i];
                            for (v = 0; v < nv; ++v) acc[v] = vfmaq_n_f16(acc[v], vld1q_f16(wp + 8 * v), xv);
                        }
                    }
                }
                for (v = 0; v < nv; ++v)
                    vstrhq_p_f16(yh + (oy * out->w + ox) * cout + o0 + 8 * v, act_f16(acc[v], act), p[v]);
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
