/* 1-bit mask of an int8 output: set where the value is strictly inside the clamp
 * (lo, hi), i.e. not saturated, where the clamp's derivative is 1. */
#include "tt_train_kernels.h"

void tt_mask_clamp_s8(const int8_t *y, int32_t n, int32_t lo, int32_t hi, uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < TT_MASK_BYTES(n); ++i) mask[i] = 0;
    for (i = 0; i < n; ++i) {
        if (y[i] > lo && y[i] < hi) mask[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}
