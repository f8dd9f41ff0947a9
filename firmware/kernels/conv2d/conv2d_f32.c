/* Float32 conv2d, HWC activations, OHWI weights, fused activation.
 *
 * Each output is bias + sum over the window's taps inside the input, in (ky, kx, i) order:
 * its floats are this order's, on every target (tests/test_kernels_f32.py checks them
 * against that order in numpy). The taps inside the input are found once per output pixel
 * (no bounds check per tap); with dil_w == 1 a kernel row's valid taps are one contiguous
 * span of x and of each weight row (kx then i: the same order), and four output channels
 * are summed at once, each in its own accumulator, sharing the loads of x. A small layer
 * (kh * kw * cin * cout <= TT_CONV_F32_SMALL = 256, cout <= 64: a first layer on 1-3 channels,
 * whose spans are too short for that) instead copies its weights tap-major onto the stack
 * and adds each tap into every output channel of the pixel at once (accumulators on the
 * stack), still tap by tap in order. */
#include "tt_kernels.h"
#include "tt_float_util.h"
#include "tt_window.h"

#define TT_CONV_F32_SMALL 256      /* floats of weights (and tap offsets) on the stack: 2 KB */
#define TT_CONV_F32_SMALL_OUT 64

static void conv2d_f32_small(const float *x, const tt_dims *in, const float *w, const float *bias,
                             int32_t kh, int32_t kw, const tt_geom *g, int32_t act, float *y,
                             const tt_dims *out)
{
    /* cp: cout rounded up to 8; eight output channels at a time, their sums in a fixed-size
     * block the compiler keeps in registers over the taps; padded channels have zero
     * weights and are not stored */
    const int32_t cin = in->c, cout = out->c, per_o = kh * kw * cin, cp = (cout + 7) & ~7;
    float wt[TT_CONV_F32_SMALL], b0[TT_CONV_F32_SMALL_OUT];
    int32_t off[TT_CONV_F32_SMALL];       /* tap element e's offset in x from the window origin */
    int32_t oh, ow, o, e, j, ky, kx, i, ky0, ky1, kx0, kx1;
    for (o = 0; o < cp; ++o) {
        for (e = 0; e < per_o; ++e) wt[e * cp + o] = o < cout ? w[o * per_o + e] : 0.0f;
        b0[o] = bias && o < cout ? bias[o] : 0.0f;
    }
    for (ky = 0; ky < kh; ++ky)
        for (kx = 0; kx < kw; ++kx)
            for (i = 0; i < cin; ++i)
                off[(ky * kw + kx) * cin + i] = (ky * g->dil_h * in->w + kx * g->dil_w) * cin + i;
    for (oh = 0; oh < out->h; ++oh) {
        const int32_t ih0 = oh * g->stride_h - g->pad_top;
        tt_window_taps(ih0, kh, g->dil_h, in->h, &ky0, &ky1);
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            const int32_t base = (ih0 * in->w + iw0) * cin;     /* the window origin (may be outside) */
            float *yp = y + (oh * out->w + ow) * cout;
            tt_window_taps(iw0, kw, g->dil_w, in->w, &kx0, &kx1);
            for (o = 0; o < cp; o += 8) {
                float a[8];
                for (j = 0; j < 8; ++j) a[j] = b0[o + j];
                if (ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw) {   /* every tap inside */
                    for (e = 0; e < per_o; ++e) {
                        const float v = x[base + off[e]];
                        const float *wr = wt + e * cp + o;
                        for (j = 0; j < 8; ++j) a[j] += v * wr[j];
                    }
                } else {
                    for (ky = ky0; ky < ky1; ++ky)
                        for (kx = kx0; kx < kx1; ++kx)
                            for (i = 0; i < cin; ++i) {
                                const int32_t te = (ky * kw + kx) * cin + i;
                                const float v = x[base + off[te]];
                                const float *wr = wt + te * cp + o;
                                for (j = 0; j < 8; ++j) a[j] += v * wr[j];
                            }
                }
                for (j = 0; j < 8 && o + j < cout; ++j) yp[o + j] = tt_act_f32(a[j], act);
            }
        }
    }
}

void tt_conv2d_f32(const float *x, const tt_dims *in,
                   const float *w, const float *bias, int32_t kh, int32_t kw,
                   const tt_geom *g, int32_t act, float *y, const tt_dims *out)
{
    const int32_t cin = in->c, row = kw * cin, per_o = kh * row;
    int32_t oh, ow, o, ky, kx, i, ky0, ky1, kx0, kx1;
    if (per_o * ((out->c + 7) & ~7) <= TT_CONV_F32_SMALL && out->c <= TT_CONV_F32_SMALL_OUT) {
        conv2d_f32_small(x, in, w, bias, kh, kw, g, act, y, out);
        return;
    }
    for (oh = 0; oh < out->h; ++oh) {
        const int32_t ih0 = oh * g->stride_h - g->pad_top;
        tt_window_taps(ih0, kh, g->dil_h, in->h, &ky0, &ky1);
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            float *yp = y + (oh * out->w + ow) * out->c;
            tt_window_taps(iw0, kw, g->dil_w, in->w, &kx0, &kx1);
            if (g->dil_w == 1) {
                const int32_t span = (kx1 - kx0) * cin;    /* contiguous in x and in w */
                for (o = 0; o + 4 <= out->c; o += 4) {
                    float a0 = bias ? bias[o] : 0.0f, a1 = bias ? bias[o + 1] : 0.0f;
                    float a2 = bias ? bias[o + 2] : 0.0f, a3 = bias ? bias[o + 3] : 0.0f;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const float *xp = x + ((ih0 + ky * g->dil_h) * in->w + iw0 + kx0) * cin;
                        const float *w0 = w + o * per_o + ky * row + kx0 * cin;
                        for (i = 0; i < span; ++i) {
                            const float v = xp[i];
                            a0 += v * w0[i];
                            a1 += v * w0[per_o + i];
                            a2 += v * w0[2 * per_o + i];
                            a3 += v * w0[3 * per_o + i];
                        }
                    }
                    yp[o] = tt_act_f32(a0, act);
                    yp[o + 1] = tt_act_f32(a1, act);
                    yp[o + 2] = tt_act_f32(a2, act);
                    yp[o + 3] = tt_act_f32(a3, act);
                }
                for (; o < out->c; ++o) {
                    float acc = bias ? bias[o] : 0.0f;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const float *xp = x + ((ih0 + ky * g->dil_h) * in->w + iw0 + kx0) * cin;
                        const float *wp = w + o * per_o + ky * row + kx0 * cin;
                        for (i = 0; i < span; ++i) acc += xp[i] * wp[i];
                    }
                    yp[o] = tt_act_f32(acc, act);
                }
                continue;
            }
            for (o = 0; o < out->c; ++o) {
                float acc = bias ? bias[o] : 0.0f;
                for (ky = ky0; ky < ky1; ++ky) {
                    const int32_t ih = ih0 + ky * g->dil_h;
                    for (kx = kx0; kx < kx1; ++kx) {
                        const float *xp = x + (ih * in->w + iw0 + kx * g->dil_w) * cin;
                        const float *wp = w + o * per_o + ky * row + kx * cin;
                        for (i = 0; i < cin; ++i) acc += xp[i] * wp[i];
                    }
                }
                yp[o] = tt_act_f32(acc, act);
            }
        }
    }
}
