/* float tanh: tt_math.h's tt_tanhf (an odd polynomial below |x| = 1/8, (1 - e) / (1 + e) with
 * e = tt_expf(-2|x|) above: the same bits on every target; tinytrain/ops/tanh.py computes the
 * same operations in numpy). */
#include "tt_kernels.h"
#include "tt_math.h"

void tt_tanh_f32(const float *x, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_tanhf(x[i]);
}
