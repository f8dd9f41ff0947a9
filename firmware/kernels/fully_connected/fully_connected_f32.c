/* Float32 fully connected, OI weights, fused activation. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_fully_connected_f32(const float *x, int32_t in_features,
                            const float *w, const float *bias, int32_t out_features,
                            int32_t act, float *y)
{
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        const float *wp = w + o * in_features;
        float acc = bias ? bias[o] : 0.0f;
        for (i = 0; i < in_features; ++i) acc += x[i] * wp[i];
        y[o] = tt_act_f32(acc, act);
    }
}
