/* Half-precision transposed convolution backward w.r.t. its input (portable; its weights stay
 * frozen, as in float32 training): grad_x[iy][ix][i] = the float32 sum from 0, over the taps
 * (ky, kx) that took input pixel (iy, ix) to output (iy*stride - pad + ky, ix*stride - pad +
 * kx) inside `out` and over the output channels o, in that order, of grad_y * w[o][ky][kx][i];
 * stored as half(sum), or half(old + sum) when accumulating (tinytrain.ops.f16.
 * transpose_conv_grad_input). Input channels go in blocks of TT_TCONV_BLOCK float32 sums on
 * the stack. Unlike the float32 kernel no zero grad_y is skipped (0 * inf stays NaN). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

#define TT_TCONV_BLOCK 32

void tt_transpose_conv_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out,
                                      const tt_f16 *w, int32_t kh, int32_t kw, const tt_geom *g,
                                      int32_t accumulate, tt_f16 *grad_x, const tt_dims *in)
{
    const int32_t cin = in->c;
    float acc[TT_TCONV_BLOCK];
    int32_t iy, ix, i0, n, ky, kx, o, i;
    for (iy = 0; iy < in->h; ++iy) {
        for (ix = 0; ix < in->w; ++ix) {
            tt_f16 *gx = grad_x + (iy * in->w + ix) * cin;
            for (i0 = 0; i0 < cin; i0 += n) {
                n = cin - i0 < TT_TCONV_BLOCK ? cin - i0 : TT_TCONV_BLOCK;
                for (i = 0; i < n; ++i) acc[i] = 0.0f;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t oy = iy * g->stride_h - g->pad_top + ky;
                    if (oy < 0 || oy >= out->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t ox = ix * g->stride_w - g->pad_left + kx;
                        const tt_f16 *gy;
                        if (ox < 0 || ox >= out->w) continue;
                        gy = grad_y + (oy * out->w + ox) * out->c;
                        for (o = 0; o < out->c; ++o) {
                            const float d = tt_h2f(gy[o]);
                            const tt_f16 *wr = w + ((size_t)(o * kh + ky) * kw + kx) * cin + i0;
                            for (i = 0; i < n; ++i) acc[i] += d * tt_h2f(wr[i]);
                        }
                    }
                }
                for (i = 0; i < n; ++i)
                    gx[i0 + i] = tt_f2h(accumulate ? tt_h2f(gx[i0 + i]) + acc[i] : acc[i]);
            }
        }
    }
}
