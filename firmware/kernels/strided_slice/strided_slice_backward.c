/* Strided slice backward: grad_y scattered into grad_x at the sliced positions, zeros
 * elsewhere (or added to grad_x when accumulating). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"

void tt_strided_slice_grad_input_f32(const float *grad_y, const tt_dims *out, const tt_slice_params *p,
                                     int32_t accumulate, float *grad_x, const tt_dims *in)
{
    int32_t i, j, k;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (i = 0; i < out->h; ++i) {
        const int32_t h = p->begin_h + i * p->stride_h;
        for (j = 0; j < out->w; ++j) {
            const int32_t w = p->begin_w + j * p->stride_w;
            float *gx = grad_x + (h * in->w + w) * in->c + p->begin_c;
            const float *gy = grad_y + (i * out->w + j) * out->c;
            for (k = 0; k < out->c; ++k) gx[k * p->stride_c] += gy[k];
        }
    }
}
