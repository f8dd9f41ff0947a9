/* Standalone int8 RELU / RELU6, TFLite ReluX: requantize to the output, then clamp
 * (q->act_min/act_max carry the relu bounds). q->multiplier[0]/shift[0] are used. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_relu_s8(const int8_t *x, int32_t n, const tt_requant *q, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        int32_t v = q->out_zp + tt_mul_by_quantized_multiplier((int32_t)x[i] - q->in_zp,
                                                               q->multiplier[0], q->shift[0]);
        y[i] = (int8_t)tt_clamp_i32(v, q->act_min, q->act_max);
    }
}
