/* Save the trained input channels of an activation for a weight gradient (sparse
 * update): k of the c channels of every pixel, listed or the first k. */
#include "tt_train_kernels.h"

void tt_save_channels_f32(const tt_channels *ch, int32_t pixels, const float *x, float *dst)
{
    const int32_t c = ch->in_channels, k = ch->k;
    int32_t p, j;
    for (p = 0; p < pixels; ++p) {
        for (j = 0; j < k; ++j) dst[p * k + j] = x[p * c + (ch->index ? ch->index[j] : j)];
    }
}
