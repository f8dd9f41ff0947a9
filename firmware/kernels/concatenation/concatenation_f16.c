/* Half-precision concatenation (portable): one input's blocks into the output, copied as
 * they are (see concatenation_s8.c; exact). */
#include <string.h>
#include "tt_kernels.h"

void tt_concatenation_f16(const tt_f16 *x, int32_t outer, int32_t in_block, int32_t out_block, int32_t offset,
                          tt_f16 *y)
{
    int32_t o;
    for (o = 0; o < outer; ++o)
        memcpy(y + o * out_block + offset, x + o * in_block, (size_t)in_block * sizeof(tt_f16));
}
