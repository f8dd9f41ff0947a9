/* Global average pooling backward: grad_y[c] / (H * W) to every pixel of channel c. */
#include "tt_train_kernels.h"

void tt_global_avg_pool_grad_input_f32(const tt_dims *in, const float *grad_y,
                                       int32_t accumulate, float *grad_x)
{
    const int32_t pixels = in->h * in->w;
    int32_t p, c;
    for (p = 0; p < pixels; ++p) {
        float *gx = grad_x + p * in->c;
        for (c = 0; c < in->c; ++c) {
            const float v = grad_y[c] / (float)pixels;
            gx[c] = accumulate ? gx[c] + v : v;
        }
    }
}
