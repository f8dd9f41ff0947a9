/* float hard swish, as TFLite's: x * min(6, max(0, x + 3)) / 6. */
#include "tt_kernels.h"

void tt_hard_swish_f32(const float *x, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float r = x[i] + 3.0f;
        const float c = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        y[i] = (x[i] * c) / 6.0f;
    }
}
