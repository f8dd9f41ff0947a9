/* Float32 fully connected backward: input and weight (trained inputs) gradients, and the
 * fused weight update (no scratch: dW[o][j] = dy[o] * x[j]). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_fully_connected_grad_input_f32(int32_t in_features, int32_t out_features,
                                       const float *grad_y, const float *w,
                                       int32_t accumulate, float *grad_x)
{
    /* grad_x[i] takes d_o * w[o][i] over the outputs o in order, those with d_o == 0
     * skipped; four of them per pass over grad_x (one load and store of it, four adds in
     * the same order) */
    int32_t o, i, n, j;
    int32_t idx[4];
    tt_zero_unless_f32(grad_x, in_features, accumulate);
    for (o = 0; o < out_features;) {
        for (n = 0; n < 4 && o < out_features; ++o)
            if (grad_y[o] != 0.0f) idx[n++] = o;
        if (n == 4) {
            const float d0 = grad_y[idx[0]], d1 = grad_y[idx[1]], d2 = grad_y[idx[2]], d3 = grad_y[idx[3]];
            const float *w0 = w + idx[0] * in_features, *w1 = w + idx[1] * in_features;
            const float *w2 = w + idx[2] * in_features, *w3 = w + idx[3] * in_features;
            for (i = 0; i < in_features; ++i) {
                float a = grad_x[i];
                a += d0 * w0[i];
                a += d1 * w1[i];
                a += d2 * w2[i];
                a += d3 * w3[i];
                grad_x[i] = a;
            }
            continue;
        }
        for (j = 0; j < n; ++j) {
            const float d = grad_y[idx[j]];
            const float *wp = w + idx[j] * in_features;
            for (i = 0; i < in_features; ++i) grad_x[i] += d * wp[i];
        }
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
        const float d = grad_y[o];
        if (ch->index == NULL && u->momentum == NULL) {
            /* the common case without the per-element branches: tt_sgd_rule's operations,
             * element by element (independent elements: the compiler may use vectors) */
            for (j = 0; j < k; ++j) {
                const float g = d * x[j] + hp.weight_decay * wr[j];
                wr[j] = wr[j] - hp.lr * g;
            }
            continue;
        }
        for (j = 0; j < k; ++j) {
            float *wp = wr + (ch->index ? ch->index[j] : j);
            *wp = tt_sgd_rule(*wp, d * x[j], &hp, u, o * k + j);
        }
    }
}
