/* What every half-precision training step uses: 1-bit activation masks, their use on a
 * gradient, saved channels, the bias update and the fp32 master copies of mixed precision. */
#include "tt_train_kernels.h"
#include "tt_update_f16.h"

void tt_mask_relu_f16(const tt_f16 *y, int32_t n, uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < TT_MASK_BYTES(n); ++i) mask[i] = 0;
    for (i = 0; i < n; ++i) {
        if (tt_h2f(y[i]) > 0.0f) mask[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

void tt_mask_relu6_f16(const tt_f16 *y, int32_t n, uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < TT_MASK_BYTES(n); ++i) mask[i] = 0;
    for (i = 0; i < n; ++i) {
        const float v = tt_h2f(y[i]);
        if (v > 0.0f && v < 6.0f) mask[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

void tt_mask_apply_f16(tt_f16 *grad, int32_t n, const uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        if (!((mask[i >> 3] >> (i & 7)) & 1u)) grad[i] = 0;
    }
}

void tt_save_channels_f16(const tt_channels *ch, int32_t pixels, const tt_f16 *x, tt_f16 *dst)
{
    const int32_t c = ch->in_channels, k = ch->k;
    int32_t p, j;
    for (p = 0; p < pixels; ++p) {
        for (j = 0; j < k; ++j) dst[p * k + j] = x[p * c + (ch->index ? ch->index[j] : j)];
    }
}

void tt_bias_update_f16(const tt_dims *out, tt_f16 *b, const tt_f16 *grad_y, const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t pixels = out->h * out->w, channels = out->c;
    int32_t c, p;
    for (c = 0; c < channels; ++c) {
        float g = 0.0f;
        for (p = 0; p < pixels; ++p) g += tt_h2f(grad_y[p * channels + c]);
        b[c] = tt_sgd_rule_f16(b[c], g, &hp, u, c);
    }
}

void tt_master_init_f16(const tt_channels *ch, int32_t rows, const tt_f16 *w, float *master)
{
    const int32_t k = ch ? ch->k : 1, stride = ch ? ch->in_channels : 1;
    int32_t r, j;
    for (r = 0; r < rows; ++r) {
        for (j = 0; j < k; ++j) {
            master[r * k + j] = tt_h2f(w[r * stride + (ch && ch->index ? ch->index[j] : j)]);
        }
    }
}

void tt_loss_scale_after_step(tt_loss_scale *ls)
{
    if (!ls->dynamic) return;
    if (ls->overflow) {
        if (ls->scale > 1.0f) ls->scale = ls->scale * 0.5f;
        ls->good_steps = 0;
    } else if (++ls->good_steps >= ls->interval) {
        if (ls->scale < 65536.0f) ls->scale = ls->scale * 2.0f;
        ls->good_steps = 0;
    }
    ls->overflow = 0;
}
