/* Gradient of concatenation w.r.t. one input: its slice of grad_y (the forward's blocks). */
#include "tt_train_kernels.h"

void tt_concatenation_grad_input_f32(const float *grad_y, int32_t outer, int32_t in_block, int32_t out_block,
                                     int32_t offset, int32_t accumulate, float *grad_x)
{
    int32_t o, i;
    for (o = 0; o < outer; ++o) {
        const float *src = grad_y + o * out_block + offset;
        float *dst = grad_x + o * in_block;
        for (i = 0; i < in_block; ++i) dst[i] = accumulate ? dst[i] + src[i] : src[i];
    }
}
