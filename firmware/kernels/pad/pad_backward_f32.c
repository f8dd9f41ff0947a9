/* Pad backward: crop the padding off the output gradient. */
#include "tt_train_kernels.h"

void tt_pad_grad_input_f32(const tt_dims *in, const tt_dims *out, int32_t pad_top,
                           int32_t pad_left, const float *grad_y, int32_t accumulate,
                           float *grad_x)
{
    int32_t h, w, c;
    for (h = 0; h < in->h; ++h) {
        for (w = 0; w < in->w; ++w) {
            const float *gy = grad_y + ((h + pad_top) * out->w + (w + pad_left)) * out->c;
            float *gx = grad_x + (h * in->w + w) * in->c;
            for (c = 0; c < in->c; ++c) gx[c] = accumulate ? gx[c] + gy[c] : gy[c];
        }
    }
}
