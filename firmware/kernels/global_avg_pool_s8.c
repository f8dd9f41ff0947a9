/* int8 mean over H and W, TFLite reference integer_ops::Mean (MEAN over axes 1, 2):
 * sum of (x - in_zp), rescaled by q->multiplier[0]/shift[0] (input to output scale),
 * divided by H*W with rounding half away from zero, plus out_zp, clamped to int8. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_global_avg_pool_s8(const int8_t *x, const tt_dims *in, const tt_requant *q, int8_t *y)
{
    const int32_t n = in->h * in->w;
    int32_t c, i;
    for (c = 0; c < in->c; c++) {
        int32_t acc = 0;
        for (i = 0; i < n; i++) acc += (int32_t)x[(size_t)i * in->c + c] - q->in_zp;
        acc = tt_mul_by_quantized_multiplier(acc, q->multiplier[0], q->shift[0]);
        acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
        acc += q->out_zp;
        y[c] = (int8_t)tt_clamp_i32(acc, q->act_min, q->act_max);
    }
}
