/* Half-precision resize backward (portable), in gather form: each element of grad_x sums in
 * float32, from 0, the output gradients that were made from it, in row-major output order
 * (bilinear: within an output, its taps in the forward's order (lo, lo), (hi, lo), (lo, hi),
 * (hi, hi) of (row, column), each gy * weight), then stores half(sum), or half(old + sum)
 * when accumulating: one rounding. The float32 kernels scatter in the same order.
 *
 * row_range / col_range (tinytrain.ops.resize.source_ranges): for input row iy, the output
 * rows [row_range[iy], row_range[in->h + iy]) hold every one made from it (columns alike);
 * the kernels test each output's source indices inside that range. Channels go in blocks
 * of TT_RESIZE_BLOCK float32 sums on the stack. */
#include "tt_train_kernels.h"
#include "tt_f16.h"

#define TT_RESIZE_BLOCK 32

static void store_block(tt_f16 *gx, const float *acc, int32_t n, int32_t accumulate)
{
    int32_t i;
    for (i = 0; i < n; ++i) gx[i] = tt_f2h(accumulate ? tt_h2f(gx[i]) + acc[i] : acc[i]);
}

void tt_resize_nearest_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out,
                                      const int32_t *rows, const int32_t *cols,
                                      const int32_t *row_range, const int32_t *col_range,
                                      int32_t accumulate, tt_f16 *grad_x, const tt_dims *in)
{
    const int32_t c = in->c;
    float acc[TT_RESIZE_BLOCK];
    int32_t iy, ix, oy, ox, c0, n, i;
    for (iy = 0; iy < in->h; ++iy) {
        for (ix = 0; ix < in->w; ++ix) {
            for (c0 = 0; c0 < c; c0 += n) {
                n = c - c0 < TT_RESIZE_BLOCK ? c - c0 : TT_RESIZE_BLOCK;
                for (i = 0; i < n; ++i) acc[i] = 0.0f;
                for (oy = row_range[iy]; oy < row_range[in->h + iy]; ++oy) {
                    if (rows[oy] != iy) continue;
                    for (ox = col_range[ix]; ox < col_range[in->w + ix]; ++ox) {
                        const tt_f16 *gy = grad_y + (oy * out->w + ox) * c + c0;
                        if (cols[ox] != ix) continue;
                        for (i = 0; i < n; ++i) acc[i] += tt_h2f(gy[i]);
                    }
                }
                store_block(grad_x + (iy * in->w + ix) * c + c0, acc, n, accumulate);
            }
        }
    }
}

void tt_resize_bilinear_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out,
                                       const int32_t *row_index, const float *row_weight,
                                       const int32_t *col_index, const float *col_weight,
                                       const int32_t *row_range, const int32_t *col_range,
                                       int32_t accumulate, tt_f16 *grad_x, const tt_dims *in)
{
    const int32_t c = in->c;
    float acc[TT_RESIZE_BLOCK];
    int32_t iy, ix, oy, ox, c0, n, i;
    for (iy = 0; iy < in->h; ++iy) {
        for (ix = 0; ix < in->w; ++ix) {
            for (c0 = 0; c0 < c; c0 += n) {
                n = c - c0 < TT_RESIZE_BLOCK ? c - c0 : TT_RESIZE_BLOCK;
                for (i = 0; i < n; ++i) acc[i] = 0.0f;
                for (oy = row_range[iy]; oy < row_range[in->h + iy]; ++oy) {
                    const int32_t ylo = row_index[oy] == iy, yhi = row_index[out->h + oy] == iy;
                    const float wy = row_weight[oy];
                    if (!ylo && !yhi) continue;
                    for (ox = col_range[ix]; ox < col_range[in->w + ix]; ++ox) {
                        const int32_t xlo = col_index[ox] == ix, xhi = col_index[out->w + ox] == ix;
                        const float wx = col_weight[ox];
                        const tt_f16 *gy = grad_y + (oy * out->w + ox) * c + c0;
                        float wt[4];            /* the weights of the taps that reach (iy, ix), in order */
                        int32_t nt = 0, t;
                        if (!xlo && !xhi) continue;
                        if (ylo && xlo) wt[nt++] = (1.0f - wy) * (1.0f - wx);
                        if (yhi && xlo) wt[nt++] = wy * (1.0f - wx);
                        if (ylo && xhi) wt[nt++] = (1.0f - wy) * wx;
                        if (yhi && xhi) wt[nt++] = wy * wx;
                        if (nt == 1) {
                            for (i = 0; i < n; ++i) acc[i] += tt_h2f(gy[i]) * wt[0];
                        } else {
                            for (i = 0; i < n; ++i) {
                                const float g = tt_h2f(gy[i]);
                                float a = acc[i];
                                for (t = 0; t < nt; ++t) a += g * wt[t];
                                acc[i] = a;
                            }
                        }
                    }
                }
                store_block(grad_x + (iy * in->w + ix) * c + c0, acc, n, accumulate);
            }
        }
    }
}
