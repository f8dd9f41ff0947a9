/* Float32 element-wise add, fused activation. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_add_f32(const float *a, const float *b, int32_t n, int32_t act, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_act_f32(a[i] + b[i], act);
}
