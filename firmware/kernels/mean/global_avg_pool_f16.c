/* Half-precision mean over H and W (portable): per channel the float sum of the pixels in
 * order, divided by the pixel count in float, one rounding to half (the order of
 * tt_global_avg_pool_f32; tinytrain/ops/f16.py global_avg_pool is its twin). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_global_avg_pool_f16(const tt_f16 *x, const tt_dims *in, tt_f16 *y)
{
    const int32_t pixels = in->h * in->w;
    int32_t p, c;
    for (c = 0; c < in->c; ++c) {
        float sum = 0.0f;
        for (p = 0; p < pixels; ++p) sum += tt_h2f(x[p * in->c + c]);
        y[c] = tt_f2h(sum / (float)pixels);
    }
}
