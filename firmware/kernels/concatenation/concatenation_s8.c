/* int8 concatenation (LiteRT's reference copies bytes; inputs and output share one
 * quantization): one input's `outer` blocks of in_block elements into the output's blocks
 * of out_block elements, at element `offset` of each. One call per input. */
#include <string.h>
#include "tt_kernels.h"

void tt_concatenation_s8(const int8_t *x, int32_t outer, int32_t in_block, int32_t out_block, int32_t offset,
                         int8_t *y)
{
    int32_t o;
    for (o = 0; o < outer; ++o) memcpy(y + o * out_block + offset, x + o * in_block, (size_t)in_block);
}
