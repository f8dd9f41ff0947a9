/* float tanh: an odd polynomial below |x| = 1/8 (Taylor to x^7, < 4e-9 relative there), above
 * it (1 - e) / (1 + e) with e = expf(-2|x|) from tt_math.h (the same bits on every target;
 * tinytrain/ops/tanh.py computes the same operations in numpy). */
#include "tt_kernels.h"
#include "tt_math.h"

void tt_tanh_f32(const float *x, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = x[i];
        const float a = v < 0.0f ? -v : v;
        if (a < 0.125f) {
            const float x2 = v * v;
            y[i] = v + v * x2 * (-0x1.555556p-2f + x2 * (0x1.111112p-3f + x2 * -0x1.ba1ba2p-5f));
        } else {
            const float e = tt_expf(-2.0f * a);
            const float t = (1.0f - e) / (1.0f + e);
            y[i] = v < 0.0f ? -t : t;
        }
    }
}
