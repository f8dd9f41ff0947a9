/* float leaky relu, as TFLite's: x > 0 ? x : x * alpha. */
#include "tt_kernels.h"

void tt_leaky_relu_f32(const float *x, int32_t n, float alpha, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : x[i] * alpha;
}
