/* Fixed-point helpers of the int8 kernels: gemmlowp / TFLite reference arithmetic,
 * reproduced operation for operation so that results are bit-exact with TFLite.
 * All functions are static inline (header only, no state). Right shifts of negative
 * values are arithmetic on every compiler we target (gcc, arm-none-eabi-gcc). */
#ifndef TT_FIXEDPOINT_H
#define TT_FIXEDPOINT_H

#include <stdint.h>

#include "tt_types.h"

static inline int32_t tt_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t tt_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t tt_clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* a + b saturated to the int32 range. Where a trained (and so possibly saturated) bias meets
 * an accumulator, a plain + would overflow: undefined behaviour. Equal to a + b whenever that
 * does not overflow, so LiteRT's results are unchanged. */
static inline int32_t tt_sat_add_s32(int32_t a, int32_t b)
{
    int64_t s = (int64_t)a + (int64_t)b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

/* round(a * b / 2^31), saturating the single overflow case (INT32_MIN * INT32_MIN). */
static inline int32_t tt_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    /* C99 division truncates toward zero, as gemmlowp relies on. */
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31. */
static inline int32_t tt_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent with saturation (gemmlowp SaturatingRoundingMultiplyByPOT);
 * exponent < 0 divides with rounding. */
static inline int32_t tt_sat_rounding_mul_by_pot(int32_t x, int32_t exponent)
{
    if (exponent == 0) return x;
    if (exponent < 0) return tt_rounding_divide_by_pot(x, -exponent);
    {
        int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
        if (x > threshold) return INT32_MAX;
        if (x < -threshold) return INT32_MIN;
        return (int32_t)((uint32_t)x << exponent);
    }
}

/* TFLite MultiplyByQuantizedMultiplier (double rounding): x * multiplier * 2^shift. */
static inline int32_t tt_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    int32_t left_shift = shift > 0 ? shift : 0;
    int32_t right_shift = shift > 0 ? 0 : -shift;
    /* x * (1 << left_shift) as in TFLite; done unsigned to keep wraparound defined. */
    int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return tt_rounding_divide_by_pot(tt_sat_rounding_doubling_high_mul(shifted, multiplier),
                                     right_shift);
}

/* Single-rounding variant: round(x * multiplier / 2^(31 - shift)) in 64 bits, halves
 * rounded up. LiteRT's int8 per-channel FULLY_CONNECTED rescales this way (measured
 * bit-exact in tests/test_refops_vs_litert.py); shift <= 30. */
/* The output of one channel of a conv-like op: requantize the int32 accumulator with that
 * channel's multiplier (TFLite's double rounding), add the output zero point, clamp. */
static inline int8_t tt_requantize_s8(int32_t acc, const tt_requant *q, int32_t c)
{
    acc = tt_sat_add_s32(tt_mul_by_quantized_multiplier(acc, q->multiplier[c], q->shift[c]), q->out_zp);
    return (int8_t)tt_clamp_i32(acc, q->act_min, q->act_max);
}

static inline int32_t tt_mul_by_quantized_multiplier_single_round(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * multiplier + round) >> total_shift);
}

/* TFLite MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0). */
static inline int32_t tt_mul_by_quantized_multiplier_gt_one(int32_t x, int32_t multiplier,
                                                             int32_t left_shift)
{
    return tt_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), multiplier);
}

/* Count of leading zero bits of a 32-bit value (32 for 0). */
static inline int32_t tt_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

/* ---- gemmlowp fixed-point numbers: raw int32 values, the number of integer bits
 * is tracked by the caller (Qm.n with m integer bits is written "Fm" below). ---- */

#define TT_FX_ONE_F0 INT32_MAX            /* 1.0 is not representable in F0: max */

/* (a + b) / 2 rounded, gemmlowp RoundingHalfSum. */
static inline int32_t tt_rounding_half_sum(int32_t a, int32_t b)
{
    int64_t sum = (int64_t)a + (int64_t)b;
    int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* Wrapping add/sub as gemmlowp's FixedPoint operator+ / operator- on int32. */
static inline int32_t tt_fx_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t tt_fx_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* exp(a) for a in [-1/4, 0), F0 in and out. */
static inline int32_t tt_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    int32_t x = tt_fx_add(a, 1 << 28);            /* a + 1/8 */
    int32_t x2 = tt_sat_rounding_doubling_high_mul(x, x);
    int32_t x3 = tt_sat_rounding_doubling_high_mul(x2, x);
    int32_t x4 = tt_sat_rounding_doubling_high_mul(x2, x2);
    int32_t x4_over_4 = tt_sat_rounding_mul_by_pot(x4, -2);
    int32_t poly = tt_sat_rounding_mul_by_pot(
        tt_fx_add(tt_sat_rounding_doubling_high_mul(tt_fx_add(x4_over_4, x3), constant_1_over_3), x2),
        -1);
    return tt_fx_add(constant_term,
                     tt_sat_rounding_doubling_high_mul(constant_term, tt_fx_add(x, poly)));
}

/* exp(a) for a <= 0; a has `integer_bits` integer bits (1..31), result is F0.
 * gemmlowp exp_on_negative_values with its barrel shifter. */
static inline int32_t tt_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t multipliers[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    }; /* exp(-2^k) for k = -2 .. 4 */
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    int32_t a_mod_quarter_minus_one_quarter = tt_fx_sub(a & mask, one_quarter);
    int32_t result = tt_exp_on_interval_between_negative_one_quarter_and_0_excl(
        tt_sat_rounding_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits));
    int32_t remainder = tt_fx_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t k;
    for (k = -2; k <= 4; k++) {
        if (integer_bits > k) {
            int32_t shift_amount = fractional_bits + k;
            if (remainder & (int32_t)(1u << shift_amount))
                result = tt_sat_rounding_doubling_high_mul(result, multipliers[k + 2]);
        }
    }
    if (integer_bits > 5) {
        int32_t clamp = -(int32_t)(1 << (36 - integer_bits));   /* -32.0 */
        if (a < clamp) result = 0;
    }
    if (a == 0) result = TT_FX_ONE_F0;
    return result;
}

/* 1 / (1 + a) for a in [0, 1): F0 in and out (Newton-Raphson, gemmlowp). */
static inline int32_t tt_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t constant_48_over_17 = 1515870810;      /* F2 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* F2 */
    const int32_t one_f2 = 1 << 29;
    int32_t half_denominator = tt_rounding_half_sum(a, TT_FX_ONE_F0);  /* F0 */
    int32_t x = tt_fx_add(constant_48_over_17,
                          tt_sat_rounding_doubling_high_mul(half_denominator, constant_neg_32_over_17));
    int i;
    for (i = 0; i < 3; i++) {
        int32_t half_denominator_times_x = tt_sat_rounding_doubling_high_mul(half_denominator, x); /* F2 */
        int32_t one_minus = tt_fx_sub(one_f2, half_denominator_times_x);                          /* F2 */
        /* F2 * F2 = F4, rescaled to F2 */
        x = tt_fx_add(x, tt_sat_rounding_mul_by_pot(tt_sat_rounding_doubling_high_mul(x, one_minus), 2));
    }
    /* x / 2 as F1 (same raw), rescaled to F0 */
    return tt_sat_rounding_mul_by_pot(x, 1);
}

/* TFLite GetReciprocal: 1/x for x with x_integer_digits integer bits, as a F0 value
 * scaled by 2^-num_bits_over_unit. */
static inline int32_t tt_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    int32_t headroom_plus_one = tt_count_leading_zeros((uint32_t)x);
    int32_t shifted_sum_minus_one;
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    shifted_sum_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    return tt_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

#endif
