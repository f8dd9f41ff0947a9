/* float logistic 1 / (1 + exp(-x)), tt_math.h's tt_logisticf on tt_expf (the same bits on
 * every target). */
#include "tt_kernels.h"
#include "tt_math.h"

void tt_logistic_f32(const float *x, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_logisticf(x[i]);
}
