/* Half-precision fully connected backward (portable): input gradient (each input sums
 * dy[o] * w[o][i] over o in order, float32, one rounding) and the fused weight update
 * (dW[o][j] = dy[o] * x[j] in float32, then tt_sgd_rule_f16). */
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

void tt_fully_connected_grad_input_f16(int32_t in_features, int32_t out_features,
                                       const tt_f16 *grad_y, const tt_f16 *w,
                                       int32_t accumulate, tt_f16 *grad_x)
{
    int32_t o, i;
    for (i = 0; i < in_features; ++i) {
        float acc = 0.0f;
        for (o = 0; o < out_features; ++o) acc += tt_h2f(grad_y[o]) * tt_h2f(w[o * in_features + i]);
        grad_x[i] = tt_f2h(accumulate ? tt_h2f(grad_x[i]) + acc : acc);
    }
}

void tt_fully_connected_update_weight_f16(int32_t out_features, const tt_channels *ch, tt_f16 *w,
                                          const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t k = ch->k;
    int32_t o, j;
    for (o = 0; o < out_features; ++o) {
        const float d = tt_h2f(grad_y[o]);
        tt_f16 *wr = w + o * ch->in_channels;
        for (j = 0; j < k; ++j) {
            tt_f16 *wp = wr + (ch->index ? ch->index[j] : j);
            *wp = tt_sgd_rule_f16(*wp, d * tt_h2f(x[j]), &hp, u, o * k + j);
        }
    }
}
