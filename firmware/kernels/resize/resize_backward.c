/* Resize backward: each output gradient goes back to the input pixels it was made from,
 * through the forward's per-axis tables (tinytrain.ops.resize). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"

void tt_resize_nearest_grad_input_f32(const float *grad_y, const tt_dims *out,
                                      const int32_t *rows, const int32_t *cols,
                                      int32_t accumulate, float *grad_x, const tt_dims *in)
{
    const int32_t c = in->c;
    int32_t oy, ox, ch;
    tt_zero_unless_f32(grad_x, in->h * in->w * c, accumulate);
    for (oy = 0; oy < out->h; ++oy) {
        for (ox = 0; ox < out->w; ++ox) {
            const float *gy = grad_y + (oy * out->w + ox) * c;
            float *gx = grad_x + (rows[oy] * in->w + cols[ox]) * c;
            for (ch = 0; ch < c; ++ch) gx[ch] += gy[ch];
        }
    }
}

void tt_resize_bilinear_grad_input_f32(const float *grad_y, const tt_dims *out,
                                       const int32_t *row_index, const float *row_weight,
                                       const int32_t *col_index, const float *col_weight,
                                       int32_t accumulate, float *grad_x, const tt_dims *in)
{
    const int32_t c = in->c;
    int32_t oy, ox, ch;
    tt_zero_unless_f32(grad_x, in->h * in->w * c, accumulate);
    for (oy = 0; oy < out->h; ++oy) {
        const float wy = row_weight[oy];
        float *r0 = grad_x + row_index[oy] * in->w * c;
        float *r1 = grad_x + row_index[out->h + oy] * in->w * c;
        for (ox = 0; ox < out->w; ++ox) {
            const float wx = col_weight[ox];
            const int32_t c0 = col_index[ox] * c, c1 = col_index[out->w + ox] * c;
            const float w00 = (1.0f - wy) * (1.0f - wx), w10 = wy * (1.0f - wx);
            const float w01 = (1.0f - wy) * wx, w11 = wy * wx;
            const float *gy = grad_y + (oy * out->w + ox) * c;
            for (ch = 0; ch < c; ++ch) {
                r0[c0 + ch] += gy[ch] * w00;
                r1[c0 + ch] += gy[ch] * w10;
                r0[c1 + ch] += gy[ch] * w01;
                r1[c1 + ch] += gy[ch] * w11;
            }
        }
    }
}
