/* Float32 transposed convolution (TFLite TRANSPOSE_CONV), HWC activations, OHWI weights,
 * fused activation: each output element gathers the input taps that reach it. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_transpose_conv_f32(const float *x, const tt_dims *in,
                           const float *w, const float *bias, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, float *y, const tt_dims *out)
{
    int32_t oy, ox, o, ky, kx, i;
    for (oy = 0; oy < out->h; ++oy) {
        for (ox = 0; ox < out->w; ++ox) {
            float *yp = y + (oy * out->w + ox) * out->c;
            for (o = 0; o < out->c; ++o) {
                float acc = bias ? bias[o] : 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ty = oy + g->pad_top - ky;
                    int32_t iy;
                    if (ty < 0 || ty % g->stride_h) continue;
                    iy = ty / g->stride_h;
                    if (iy >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t tx = ox + g->pad_left - kx;
                        const float *xp, *wp;
                        int32_t ix;
                        if (tx < 0 || tx % g->stride_w) continue;
                        ix = tx / g->stride_w;
                        if (ix >= in->w) continue;
                        xp = x + (iy * in->w + ix) * in->c;
                        wp = w + ((o * kh + ky) * kw + kx) * in->c;
                        for (i = 0; i < in->c; ++i) acc += xp[i] * wp[i];
                    }
                }
                yp[o] = tt_act_f32(acc, act);
            }
        }
    }
}
