/* Half-precision tanh (portable): each half widened, tt_math.h's tt_tanhf in float
 * (tt_tanh_f32's bits), one rounding to half. tinytrain/ops/tanh.py tanh_f16 computes the
 * same bits. */
#include "tt_kernels.h"
#include "tt_math.h"
#include "tt_f16.h"

void tt_tanh_f16(const tt_f16 *x, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_f2h(tt_tanhf(tt_h2f(x[i])));
}
