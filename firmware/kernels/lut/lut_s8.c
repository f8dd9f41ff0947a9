/* int8 table lookup, LiteRT's LookupTable: y = lut[x + 128], the table computed at compile
 * time as LiteRT's Prepare computes it (tinytrain/ops/lut.py: logistic, tanh). */
#include "tt_kernels.h"

void tt_lut_s8(const int8_t *x, int32_t n, const int8_t *lut, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = lut[(int32_t)x[i] + 128];
}
