/* float concatenation: one input's blocks into the output (see concatenation_s8.c). */
#include <string.h>
#include "tt_kernels.h"

void tt_concatenation_f32(const float *x, int32_t outer, int32_t in_block, int32_t out_block, int32_t offset,
                          float *y)
{
    int32_t o;
    for (o = 0; o < outer; ++o)
        memcpy(y + o * out_block + offset, x + o * in_block, (size_t)in_block * sizeof(float));
}
