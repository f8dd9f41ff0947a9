/* Float32 fully connected backward: input, weight (first k_in inputs) and bias
 * gradients, and the fused weight update (no scratch: dW[o][i] = dy[o] * x[i]). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_fully_connected_grad_input_f32(const float *grad_y, int32_t out_features,
                                       const float *w, int32_t in_features,
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

void tt_fully_connected_grad_weight_f32(const float *x, int32_t k_in,
                                        const float *grad_y, int32_t out_features,
                                        int32_t accumulate, float *grad_w)
{
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        float *gp = grad_w + o * k_in;
        for (i = 0; i < k_in; ++i) {
            const float v = grad_y[o] * x[i];
            gp[i] = accumulate ? gp[i] + v : v;
        }
    }
}

void tt_fully_connected_grad_bias_f32(const float *grad_y, int32_t n,
                                      int32_t accumulate, float *grad_b)
{
    int32_t i;
    for (i = 0; i < n; ++i) grad_b[i] = accumulate ? grad_b[i] + grad_y[i] : grad_y[i];
}

void tt_fully_connected_update_weight_f32(float *w, int32_t in_features,
                                          const float *x, const float *grad_y, int32_t out_features,
                                          int32_t k_in, const int32_t *ch_index,
                                          float lr, float momentum, float weight_decay,
                                          float *m_buf)
{
    int32_t o, j;
    for (o = 0; o < out_features; ++o) {
        float *wr = w + o * in_features;
        for (j = 0; j < k_in; ++j) {
            float *wp = wr + (ch_index ? ch_index[j] : j);
            *wp = tt_sgd_rule(*wp, grad_y[o] * x[j], lr, momentum, weight_decay,
                              m_buf ? m_buf + o * k_in + j : NULL);
        }
    }
}
