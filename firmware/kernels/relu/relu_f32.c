/* Float32 standalone relu (act 1) / relu6 (act 2); act 0 copies. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_relu_f32(const float *x, int32_t n, int32_t act, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_act_f32(x[i], act);
}
