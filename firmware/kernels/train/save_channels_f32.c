/* Save the trained input channels of an activation for a weight gradient (sparse
 * update): k of the c channels of every pixel, listed or the first k. */
#include "tt_train_kernels.h"

void tt_save_channels_f32(const float *x, int32_t pixels, int32_t c, int32_t k,
                         const int32_t *ch_index, float *dst)
{
    int32_t p, j;
    for (p = 0; p < pixels; ++p) {
        for (j = 0; j < k; ++j) dst[p * k + j] = x[p * c + (ch_index ? ch_index[j] : j)];
    }
}
