/* QAS SGD on int32 biases from the output gradient, channel by channel (no bias-gradient
 * buffer; scale[c] = w_scale * x_scale), saturated to +-2^30 (TT_QAS_BIAS_MIN / _MAX: the
 * range where no kernel's accumulator overflows, see tt_update_rules.h). Rule and update
 * modes: tt_update_rules.h. */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

void tt_bias_update_s32(const tt_dims *out, int32_t *b, const float *scale, const float *grad_y,
                        const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t pixels = out->h * out->w, channels = out->c;
    int32_t c, p;
    for (c = 0; c < channels; ++c) {
        float g = 0.0f;       /* the bias gradient: channel c of grad_y summed over the pixels */
        for (p = 0; p < pixels; ++p) {
            g += grad_y[p * channels + c];
        }
        b[c] = tt_qas_rule(b[c], g, scale[c], &hp, u, c, TT_QAS_BIAS_MIN, TT_QAS_BIAS_MAX);
    }
    tt_update_advance(u, channels);
}
