/* Quantization-aware-scaled (QAS) SGD on int8 weights from real-valued gradients:
 * conv2d / fully connected (out_ch, spatial, in_ch) and depthwise (spatial, channels).
 * Rule and update modes: tt_update_rules.h. */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

void tt_qas_update_weight_s8(int8_t *w, const float *grad_real, int32_t out_ch, int32_t spatial,
                             int32_t in_ch, int32_t k_in, const float *w_scale, int32_t per_channel,
                             float lr, float momentum, float weight_decay,
                             float *m_buf, const tt_qas_state *qs)
{
    int32_t o, s, j;
    for (o = 0; o < out_ch; ++o) {
        const float scale = w_scale[per_channel ? o : 0];
        for (s = 0; s < spatial; ++s) {
            int8_t *wr = w + (o * spatial + s) * in_ch;
            for (j = 0; j < k_in; ++j) {
                const int32_t e = (o * spatial + s) * k_in + j;
                wr[j] = (int8_t)tt_qas_rule(wr[j], grad_real[e], scale, lr, momentum, weight_decay,
                                            m_buf ? m_buf + e : NULL, qs, e,
                                            TT_QAS_S8_MIN, TT_QAS_S8_MAX);
            }
        }
    }
    tt_qas_state_advance(qs, out_ch * spatial * k_in);
}

void tt_qas_update_dw_weight_s8(int8_t *w, const float *grad_real, int32_t spatial,
                                int32_t channels, int32_t k_ch, const float *w_scale,
                                int32_t per_channel, float lr, float momentum,
                                float weight_decay, float *m_buf, const tt_qas_state *qs)
{
    int32_t s, c;
    for (s = 0; s < spatial; ++s) {
        int8_t *wr = w + s * channels;
        for (c = 0; c < k_ch; ++c) {
            const int32_t e = s * k_ch + c;
            wr[c] = (int8_t)tt_qas_rule(wr[c], grad_real[e], w_scale[per_channel ? c : 0], lr,
                                        momentum, weight_decay, m_buf ? m_buf + e : NULL, qs, e,
                                        TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    }
    tt_qas_state_advance(qs, spatial * k_ch);
}

void tt_qas_shadow_init_s8(float *shadow, const int8_t *w, int32_t rows, int32_t row_len,
                           int32_t stride, const int32_t *ch_index)
{
    int32_t r, j;
    for (r = 0; r < rows; ++r) {
        for (j = 0; j < row_len; ++j) {
            shadow[r * row_len + j] = (float)w[r * stride + (ch_index ? ch_index[j] : j)];
        }
    }
}
