/* Float32 softmax over the last axis (rows x depth), max-subtracted for stability;
 * exp from tt_math.h (the same bits on every target). */
#include <math.h>
#include "tt_math.h"
#include "tt_kernels.h"

void tt_softmax_f32(const float *x, int32_t rows, int32_t depth, float *y)
{
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        const float *xr = x + r * depth;
        float *yr = y + r * depth;
        float m = xr[0], sum = 0.0f;
        for (i = 1; i < depth; ++i) if (xr[i] > m) m = xr[i];
        for (i = 0; i < depth; ++i) {
            yr[i] = tt_expf(xr[i] - m);
            sum += yr[i];
        }
        for (i = 0; i < depth; ++i) yr[i] = yr[i] / sum;
    }
}
