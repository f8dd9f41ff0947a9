/* Gradient accumulation: a tensor read by several ops gets the sum of their gradients
 * (an add passes its output gradient unchanged to both inputs). */
#include "tt_train_kernels.h"

void tt_add_grad_f32(float *dst, const float *src, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) dst[i] += src[i];
}
