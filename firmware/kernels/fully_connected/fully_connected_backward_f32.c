/* Float32 fully connected backward: input and weight (trained inputs) gradients, and the
 * fused weight update (no scratch: dW[o][j] = dy[o] * x[j]). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_fully_connected_grad_input_f32(int32_t in_features, int32_t out_features,
                                       const float *grad_y, const float *w,
                                       int32_t accumulate, float *grad_x)
{
    int32_t o, i;
    tt_zero_unless_f32(grad_x, in_features, accumulate);
    for (o = 0; o < out_features; ++o) {
        const float *wp = w + o * in_features;
        const float d = grad_y[o];
        if (d == 0.0f) continue;
        for (i = 0; i < in_features; ++i) grad_x[i] += d * wp[i];
    }
}

void tt_fully_connected_grad_weight_f32(int32_t out_features, const tt_channels *ch,
                                        const float *x, const float *grad_y,
                                        int32_t accumulate, float *grad_w)
{
    const int32_t k = ch->k;
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        float *gp = grad_w + o * k;
        for (i = 0; i < k; ++i) {
            const float v = grad_y[o] * x[i];
            gp[i] = accumulate ? gp[i] + v : v;
        }
    }
}

void tt_fully_connected_update_weight_f32(int32_t out_features, const tt_channels *ch, float *w,
                                          const float *x, const float *grad_y, const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t k = ch->k;
    int32_t o, j;
    for (o = 0; o < out_features; ++o) {
        float *wr = w + o * ch->in_channels;
        for (j = 0; j < k; ++j) {
            float *wp = wr + (ch->index ? ch->index[j] : j);
            *wp = tt_sgd_rule(*wp, grad_y[o] * x[j], &hp, u, o * k + j);
        }
    }
}
