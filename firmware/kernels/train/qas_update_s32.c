/* QAS SGD on int32 biases (scale w_scale[o] * x_scale), rounded exactly, saturated to
 * the int32 range. Rule: tt_update_rules.h. */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

void tt_qas_update_bias_s32(int32_t *b, const float *grad_real, int32_t n,
                            const float *w_scale, int32_t per_channel, float x_scale,
                            float lr, float momentum, float weight_decay, float *m_buf)
{
    int32_t o;
    for (o = 0; o < n; ++o) {
        const float scale = w_scale[per_channel ? o : 0] * x_scale;
        b[o] = tt_qas_rule(b[o], grad_real[o], scale, lr, momentum, weight_decay,
                           m_buf ? m_buf + o : NULL, NULL, INT32_MIN, INT32_MAX);
    }
}
