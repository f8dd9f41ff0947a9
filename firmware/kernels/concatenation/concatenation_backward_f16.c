/* Half-precision concatenation backward (portable): an input's slice of grad_y, stored as is,
 * or as half(old + g) when accumulating (one rounding). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_concatenation_grad_input_f16(const tt_f16 *grad_y, int32_t outer, int32_t in_block, int32_t out_block,
                                     int32_t offset, int32_t accumulate, tt_f16 *grad_x)
{
    int32_t o, i;
    for (o = 0; o < outer; ++o) {
        const tt_f16 *src = grad_y + o * out_block + offset;
        tt_f16 *dst = grad_x + o * in_block;
        for (i = 0; i < in_block; ++i) dst[i] = accumulate ? tt_f2h(tt_h2f(dst[i]) + tt_h2f(src[i])) : src[i];
    }
}
