/* In-place bias updates of a training step and the initialisation of fp32 shadows: the
 * runtime helpers every trained layer's backward calls (rules: tt_update_rules.h). */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

/* Sum over the pixels of channel c of grad_y (pixels x channels): a bias gradient. */
static float channel_sum(const float *grad_y, int32_t pixels, int32_t channels, int32_t c)
{
    float s = 0.0f;
    int32_t p;
    for (p = 0; p < pixels; ++p) {
        s += grad_y[p * channels + c];
    }
    return s;
}

void tt_bias_update_f32(float *b, const float *grad_y, int32_t pixels, int32_t channels,
                        float lr, float momentum, float weight_decay, float *m_buf)
{
    int32_t c;
    for (c = 0; c < channels; ++c) {
        const float g = channel_sum(grad_y, pixels, channels, c);
        b[c] = tt_sgd_rule(b[c], g, lr, momentum, weight_decay, m_buf ? &m_buf[c] : NULL);
    }
}

void tt_bias_update_s32(int32_t *b, const float *grad_y, int32_t pixels, int32_t channels,
                        const float *scale, float lr, float momentum, float weight_decay,
                        float *m_buf, float *shadow)
{
    int32_t c;
    for (c = 0; c < channels; ++c) {
        const float g = channel_sum(grad_y, pixels, channels, c);
        b[c] = tt_qas_rule(b[c], g, scale[c], lr, momentum, weight_decay,
                           m_buf ? &m_buf[c] : NULL, shadow ? &shadow[c] : NULL,
                           INT32_MIN, INT32_MAX);
    }
}

void tt_shadow_init_s8(float *shadow, const int8_t *w, int32_t rows, int32_t row_len,
                       int32_t stride, const int32_t *ch_index)
{
    int32_t r, j;
    for (r = 0; r < rows; ++r) {
        for (j = 0; j < row_len; ++j) {
            shadow[r * row_len + j] = (float)w[r * stride + (ch_index ? ch_index[j] : j)];
        }
    }
}

void tt_shadow_init_s32(float *shadow, const int32_t *b, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        shadow[i] = (float)b[i];
    }
}
