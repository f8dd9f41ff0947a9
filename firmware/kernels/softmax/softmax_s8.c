/* int8 softmax, TFLite reference Softmax with gemmlowp fixed point (as CMSIS-NN's
 * arm_softmax_s8): output scale 1/256, zero point -128. Each row of `depth` values is
 * normalized independently.
 *
 * A row whose exponentials (each <= 1) sum to 512 or more (only possible with depth >= 512,
 * values within a few steps of the row's maximum) needs a final right shift of 32..35 bits:
 * LiteRT's reference kernel (and TFLM's, the same header) stops there with
 * TFLITE_CHECK(exponent <= 31), i.e. abort(). Every probability of such a row is below
 * 1/512, half an output step, so it rounds to 0: the row is written as -128 (what the
 * rounding shift gives when done in 64 bits; in 32 bits the shift would be undefined). */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

#define TT_SOFTMAX_DIFF_INTEGER_BITS 5     /* input differences: F5 */
#define TT_SOFTMAX_ACCUM_INTEGER_BITS 12   /* sum of exponentials: F12 */

void tt_softmax_s8(const int8_t *x, int32_t rows, int32_t depth, const tt_softmax_params *p, int8_t *y)
{
    int32_t r, c;
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + (size_t)r * depth;
        int8_t *yr = y + (size_t)r * depth;
        int32_t max_in_row = INT8_MIN;
        int32_t sum_of_exps = 0;   /* F12 */
        int32_t num_bits_over_unit, shifted_scale, exponent;
        for (c = 0; c < depth; c++) max_in_row = tt_max_i32(max_in_row, xr[c]);
        for (c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)xr[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tt_mul_by_quantized_multiplier_gt_one(
                    diff, p->input_multiplier, p->input_left_shift);
                const int32_t e = tt_exp_on_negative_values(scaled, TT_SOFTMAX_DIFF_INTEGER_BITS);
                /* F0 -> F12 */
                sum_of_exps = tt_fx_add(sum_of_exps,
                                        tt_sat_rounding_mul_by_pot(e, -TT_SOFTMAX_ACCUM_INTEGER_BITS));
            }
        }
        shifted_scale = tt_get_reciprocal(sum_of_exps, TT_SOFTMAX_ACCUM_INTEGER_BITS, &num_bits_over_unit);
        exponent = num_bits_over_unit + 31 - 8;
        if (exponent > 31) {            /* sum of exponentials >= 512: every output rounds to 0 */
            for (c = 0; c < depth; c++) yr[c] = INT8_MIN;
            continue;
        }
        for (c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)xr[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tt_mul_by_quantized_multiplier_gt_one(
                    diff, p->input_multiplier, p->input_left_shift);
                const int32_t e = tt_exp_on_negative_values(scaled, TT_SOFTMAX_DIFF_INTEGER_BITS);
                const int32_t unsat = tt_rounding_divide_by_pot(
                    tt_sat_rounding_doubling_high_mul(shifted_scale, e), exponent);
                yr[c] = (int8_t)tt_clamp_i32(unsat + INT8_MIN, INT8_MIN, INT8_MAX);
            } else {
                yr[c] = INT8_MIN;
            }
        }
    }
}
