/* QAS SGD on int32 biases (scale w_scale[o] * x_scale), saturated to the int32 range:
 * from a bias gradient (tt_qas_update_bias_s32), or summed channel by channel from the
 * output gradient (tt_bias_update_s32, what the generated training step calls).
 * Rule and update modes: tt_update_rules.h. */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

void tt_qas_update_bias_s32(int32_t *b, const float *grad_real, int32_t n,
                            const float *w_scale, int32_t per_channel, float x_scale,
                            float lr, float momentum, float weight_decay, float *m_buf,
                            const tt_qas_state *qs)
{
    int32_t o;
    for (o = 0; o < n; ++o) {
        const float scale = w_scale[per_channel ? o : 0] * x_scale;
        b[o] = tt_qas_rule(b[o], grad_real[o], scale, lr, momentum, weight_decay,
                           m_buf ? m_buf + o : NULL, qs, o, INT32_MIN, INT32_MAX);
    }
    tt_qas_state_advance(qs, n);
}

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

void tt_bias_update_s32(int32_t *b, const float *grad_y, int32_t pixels, int32_t channels,
                        const float *scale, float lr, float momentum, float weight_decay,
                        float *m_buf, const tt_qas_state *qs)
{
    int32_t c;
    for (c = 0; c < channels; ++c) {
        b[c] = tt_qas_rule(b[c], channel_sum(grad_y, pixels, channels, c), scale[c], lr, momentum,
                           weight_decay, m_buf ? m_buf + c : NULL, qs, c, INT32_MIN, INT32_MAX);
    }
    tt_qas_state_advance(qs, channels);
}

void tt_qas_shadow_init_s32(float *shadow, const int32_t *b, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        shadow[i] = (float)b[i];
    }
}
