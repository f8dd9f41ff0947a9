/* fully connected backward of int8 graphs: int8 weights / saved inputs dequantized
 * on the fly, float gradients, fused QAS weight update (no scratch). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_fully_connected_grad_input_s8(const float *grad_y, int32_t out_features,
                                      const int8_t *w, const float *w_scale, int32_t per_channel,
                                      int32_t in_features, int32_t accumulate, float *grad_x)
{
    int32_t o, i;
    tt_zero_unless_f32(grad_x, in_features, accumulate);
    for (o = 0; o < out_features; ++o) {
        const int8_t *wp = w + o * in_features;
        float d = grad_y[o];
        if (d == 0.0f) continue;
        d = d * w_scale[per_channel ? o : 0];
        for (i = 0; i < in_features; ++i) grad_x[i] += d * (float)wp[i];
    }
}

void tt_fully_connected_grad_weight_s8(const int8_t *x, int32_t k_in, float x_scale, int32_t x_zp,
                                       const float *grad_y, int32_t out_features,
                                       int32_t accumulate, float *grad_w)
{
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        const float d = grad_y[o] * x_scale;
        float *gp = grad_w + o * k_in;
        for (i = 0; i < k_in; ++i) {
            const float v = d * (float)((int32_t)x[i] - x_zp);
            gp[i] = accumulate ? gp[i] + v : v;
        }
    }
}

void tt_fully_connected_update_weight_s8(int8_t *w, int32_t in_features,
                                         const float *w_scale, int32_t per_channel,
                                         const int8_t *x, float x_scale, int32_t x_zp,
                                         const float *grad_y, int32_t out_features,
                                         int32_t k_in, const int32_t *ch_index,
                                         float lr, float momentum, float weight_decay,
                                         float *m_buf, const tt_qas_state *qs)
{
    int32_t o, j;
    for (o = 0; o < out_features; ++o) {
        const float d = grad_y[o] * x_scale;
        const float scale = w_scale[per_channel ? o : 0];
        int8_t *wr = w + o * in_features;
        for (j = 0; j < k_in; ++j) {
            const int32_t e = o * k_in + j;
            int8_t *wp = wr + (ch_index ? ch_index[j] : j);
            *wp = (int8_t)tt_qas_rule(*wp, d * (float)((int32_t)x[j] - x_zp), scale, lr, momentum,
                                      weight_decay, m_buf ? m_buf + e : NULL, qs, e,
                                      TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    }
    tt_qas_state_advance(qs, out_features * k_in);
}
