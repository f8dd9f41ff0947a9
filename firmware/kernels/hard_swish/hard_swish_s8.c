/* int8 hard swish, LiteRT's reference HardSwish operation for operation: 16-bit fixed point
 * (gemmlowp's int16 rounding doubling high multiply and rounding divide, SQDMULH-like
 * truncating multiply for the final product), parameters from tinytrain.ops.hard_swish. */
#include "tt_kernels.h"

#define TT_I16_MIN (-32768)
#define TT_I16_MAX 32767

static int16_t srdhm16(int16_t a, int16_t b)
{
    int32_t ab, nudge;
    if (a == TT_I16_MIN && b == TT_I16_MIN) return TT_I16_MAX;
    ab = (int32_t)a * (int32_t)b;
    nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));          /* C division truncates toward zero */
}

static int16_t sdhm16(int16_t a, int16_t b)
{
    if (a == TT_I16_MIN && b == TT_I16_MIN) return TT_I16_MAX;
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT on int16: the mask is an int16 (exponents >= 16 wrap it). */
static int16_t rdbp16(int16_t x, int32_t exponent)
{
    const int16_t mask = (int16_t)(uint16_t)((1LL << exponent) - 1);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int16_t sat_left_shift16(int16_t v, int32_t amount)
{
    int64_t r = (int64_t)v * ((int64_t)1 << amount);
    return (int16_t)(r > TT_I16_MAX ? TT_I16_MAX : (r < TT_I16_MIN ? TT_I16_MIN : r));
}

void tt_hard_swish_s8(const int8_t *x, int32_t n, const tt_hard_swish_params *p, int8_t *y)
{
    const int16_t out_mult = (int16_t)p->output_multiplier;
    const int16_t relu_mult = (int16_t)p->reluish_multiplier;
    const int32_t e = p->reluish_exponent;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int16_t v = (int16_t)((int32_t)x[i] - p->input_zp);
        const int16_t hires = (int16_t)(v * (1 << 7));
        const int16_t preshift = srdhm16(hires, out_mult);
        int16_t reluish = hires;
        int16_t out;
        if (e > 0) reluish = sat_left_shift16(reluish, e - 1);
        reluish = srdhm16(reluish, relu_mult);
        if (e > 0) reluish = sat_left_shift16(reluish, 1);
        if (e < 0) reluish = rdbp16(reluish, -e);
        reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
        out = rdbp16(sdhm16(reluish, preshift), -p->output_exponent);
        out = (int16_t)(uint16_t)((int32_t)out + p->output_zp);   /* LiteRT's int16 += */
        y[i] = (int8_t)(out > 127 ? 127 : (out < -128 ? -128 : out));
    }
}
