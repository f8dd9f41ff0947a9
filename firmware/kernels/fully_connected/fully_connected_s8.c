/* int8 fully connected as LiteRT runs FULLY_CONNECTED with per-channel weights (what the
 * TFLite converter emits for Dense): int32 accumulator, then a SINGLE-rounding rescale
 * (unlike conv's double rounding). w OI, bias int32 (may be NULL); q->multiplier/shift
 * hold one entry per output. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_fully_connected_s8(const int8_t *x, int32_t in_features,
                           const int8_t *w, const int32_t *bias, int32_t out_features,
                           const tt_requant *q, int8_t *y)
{
    int32_t o, i;
    for (o = 0; o < out_features; o++) {
        const int8_t *wp = w + (size_t)o * in_features;
        int32_t acc = 0;
        for (i = 0; i < in_features; i++)
            acc += ((int32_t)x[i] - q->in_zp) * (int32_t)wp[i];
        if (bias) acc = tt_sat_add_s32(acc, bias[o]);
        acc = tt_mul_by_quantized_multiplier_single_round(acc, q->multiplier[o], q->shift[o]);
        acc = tt_sat_add_s32(acc, q->out_zp);
        y[o] = (int8_t)tt_clamp_i32(acc, q->act_min, q->act_max);
    }
}
