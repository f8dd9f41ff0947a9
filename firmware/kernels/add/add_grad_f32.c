/* Gradients of add / sub. tt_add_grad_f32: a tensor read by several ops gets the sum of their
 * gradients (an add passes its output gradient unchanged to both inputs).
 * tt_add_grad_bcast_f32: the gradient of an operand that was broadcast (or of sub's second
 * operand, sign -1): sign * grad_y summed over the output positions that read each element. */
#include "tt_train_kernels.h"

void tt_add_grad_f32(float *dst, const float *src, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) dst[i] += src[i];
}

void tt_add_grad_bcast_f32(const float *grad_y, const tt_bcast *bc, float sign, int32_t accumulate,
                           float *grad_x)
{
    int32_t i, j, k;
    const float *gy = grad_y;
    if (!accumulate) {
        for (i = 0; i < bc->h; ++i)
            for (j = 0; j < bc->w; ++j)
                for (k = 0; k < bc->c; ++k) grad_x[i * bc->a_sh + j * bc->a_sw + k * bc->a_sc] = 0.0f;
    }
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            float *gx = grad_x + i * bc->a_sh + j * bc->a_sw;
            for (k = 0; k < bc->c; ++k) gx[k * bc->a_sc] += sign * *gy++;
        }
    }
}
