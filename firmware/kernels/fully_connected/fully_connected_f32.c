/* Float32 fully connected, OI weights, fused activation. Each output is bias + x[0] w[0] +
 * x[1] w[1] + ... in that order (its floats are this order's on every target); four outputs
 * are summed at once, each in its own accumulator, sharing the loads of x. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_fully_connected_f32(const float *x, int32_t in_features,
                            const float *w, const float *bias, int32_t out_features,
                            int32_t act, float *y)
{
    int32_t o, i;
    for (o = 0; o + 4 <= out_features; o += 4) {
        const float *w0 = w + o * in_features;
        float a0 = bias ? bias[o] : 0.0f, a1 = bias ? bias[o + 1] : 0.0f;
        float a2 = bias ? bias[o + 2] : 0.0f, a3 = bias ? bias[o + 3] : 0.0f;
        for (i = 0; i < in_features; ++i) {
            const float v = x[i];
            a0 += v * w0[i];
            a1 += v * w0[in_features + i];
            a2 += v * w0[2 * in_features + i];
            a3 += v * w0[3 * in_features + i];
        }
        y[o] = tt_act_f32(a0, act);
        y[o + 1] = tt_act_f32(a1, act);
        y[o + 2] = tt_act_f32(a2, act);
        y[o + 3] = tt_act_f32(a3, act);
    }
    for (; o < out_features; ++o) {
        const float *wp = w + o * in_features;
        float acc = bias ? bias[o] : 0.0f;
        for (i = 0; i < in_features; ++i) acc += x[i] * wp[i];
        y[o] = tt_act_f32(acc, act);
    }
}
