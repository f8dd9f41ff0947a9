/* Half-precision standalone relu (act 1) / relu6 (act 2), portable: exact (a selection). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_relu_f16(const tt_f16 *x, int32_t n, int32_t act, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_f2h(tt_act_f16(tt_h2f(x[i]), act));
}
