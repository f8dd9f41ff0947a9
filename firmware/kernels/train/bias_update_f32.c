/* SGD on a float bias from the output gradient, channel by channel (no bias-gradient
 * buffer): the gradient of channel c is the sum over the pixels of grad_y, in pixel order.
 * Rule: tt_update_rules.h. */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

void tt_bias_update_f32(const tt_dims *out, float *b, const float *grad_y, const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t pixels = out->h * out->w, channels = out->c;
    int32_t c, p;
    for (c = 0; c < channels; ++c) {
        float g = 0.0f;
        for (p = 0; p < pixels; ++p) {
            g += grad_y[p * channels + c];
        }
        b[c] = tt_sgd_rule(b[c], g, &hp, u, c);
    }
}
