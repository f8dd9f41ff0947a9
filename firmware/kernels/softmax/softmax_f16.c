/* Half-precision softmax over the last axis (portable), inside a graph (a final softmax
 * stays float32 after the output's cast: tinytrain/precision.py): per row, the largest
 * value m, then in float the sum of tt_expf(x - m) in order, then each
 * half(tt_expf(x[i] - m) / sum) (the exponential recomputed: the same bits; tt_softmax_f32's
 * order). tinytrain/ops/f16.py softmax is its twin (tinytrain/ieee_math.py's expf). */
#include "tt_math.h"
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_softmax_f16(const tt_f16 *x, int32_t rows, int32_t depth, tt_f16 *y)
{
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        const tt_f16 *xr = x + r * depth;
        tt_f16 *yr = y + r * depth;
        float m = tt_h2f(xr[0]), sum = 0.0f;
        for (i = 1; i < depth; ++i) if (tt_h2f(xr[i]) > m) m = tt_h2f(xr[i]);
        for (i = 0; i < depth; ++i) sum += tt_expf(tt_h2f(xr[i]) - m);
        for (i = 0; i < depth; ++i) yr[i] = tt_f2h(tt_expf(tt_h2f(xr[i]) - m) / sum);
    }
}
