/* int8 elementwise add, TFLite reference integer_ops::Add: both inputs are moved to a
 * common scale with 2^left_shift headroom, summed, then rescaled to the output. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_add_s8(const int8_t *a, const int8_t *b, int32_t n, const tt_add_params *p, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const int32_t a_shifted = ((int32_t)a[i] - p->a_zp) * (1 << p->left_shift);
        const int32_t b_shifted = ((int32_t)b[i] - p->b_zp) * (1 << p->left_shift);
        const int32_t a_scaled = tt_mul_by_quantized_multiplier(a_shifted, p->a_mult, p->a_shift);
        const int32_t b_scaled = tt_mul_by_quantized_multiplier(b_shifted, p->b_mult, p->b_shift);
        int32_t out = tt_mul_by_quantized_multiplier(a_scaled + b_scaled, p->out_mult, p->out_shift);
        out += p->out_zp;
        y[i] = (int8_t)tt_clamp_i32(out, p->act_min, p->act_max);
    }
}
