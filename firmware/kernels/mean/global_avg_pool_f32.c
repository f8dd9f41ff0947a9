/* Float32 mean over H and W, per channel. */
#include "tt_kernels.h"

void tt_global_avg_pool_f32(const float *x, const tt_dims *in, float *y)
{
    const int32_t pixels = in->h * in->w;
    int32_t p, c;
    for (c = 0; c < in->c; ++c) {
        float sum = 0.0f;
        for (p = 0; p < pixels; ++p) sum += x[p * in->c + c];
        y[c] = sum / (float)pixels;
    }
}
