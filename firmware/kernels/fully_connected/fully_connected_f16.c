/* Half-precision fully connected (portable): bias, then + x[i] * w[o][i] in order, in
 * float32, one rounding to half. */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_fully_connected_f16(const tt_f16 *x, int32_t in_features, const tt_f16 *w,
                            const tt_f16 *bias, int32_t out_features, int32_t act, tt_f16 *y)
{
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        const tt_f16 *wp = w + o * in_features;
        float acc = bias ? tt_h2f(bias[o]) : 0.0f;
        for (i = 0; i < in_features; ++i) acc += tt_h2f(x[i]) * tt_h2f(wp[i]);
        y[o] = tt_f2h(tt_act_f16(acc, act));
    }
}
