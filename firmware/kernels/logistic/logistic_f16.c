/* Half-precision logistic (portable): each half widened, tt_math.h's tt_logisticf in float
 * (1 / (1 + tt_expf(-x)), tt_logistic_f32's bits), one rounding to half. No C library
 * approximation: tinytrain/ops/logistic.py logistic_f16 computes the same bits. */
#include "tt_kernels.h"
#include "tt_math.h"
#include "tt_f16.h"

void tt_logistic_f16(const tt_f16 *x, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_f2h(tt_logisticf(tt_h2f(x[i])));
}
