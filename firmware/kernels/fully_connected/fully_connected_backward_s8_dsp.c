/* fully connected backward of int8 graphs for cores without vector floats (Cortex-M4/M7 and
 * the host): tt_fully_connected_grad_input_s8 / _grad_weight_s8 / _update_weight_s8's
 * results, float for float and byte for byte (declared in tt_kernels_simd.h).
 *
 * - grad_input is a 1x1 convolution's input gradient on a single pixel: it runs
 *   tt_conv2d_grad_input_s8_dsp on that shape (the same products, each input gradient
 *   element summing them over the output channels in ascending order, as the reference).
 * - grad_weight: each element is one product d_o * (x_i - zp) (plus the old value when
 *   accumulating); the order of elements does not matter, so the inputs are converted to
 *   float once per TT_FC_CHUNK of them (on the stack) instead of once per product.
 * - update_weight: the same gradient products, then the QAS rule of tt_update_rules.h with
 *   its rounding through tt_update_fast.h (bit-identical, without libm's floorf or 64-bit
 *   arithmetic), the update mode chosen once per call instead of once per weight. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"
#include "tt_update_fast.h"
#include "tt_kernels_simd.h"

void tt_fully_connected_grad_input_s8_dsp(int32_t in_features, int32_t out_features,
                                          const float *grad_y, const int8_t *w,
                                          const tt_weight_quant *wq, int32_t accumulate,
                                          float *grad_x)
{
    const tt_dims in = {1, 1, in_features}, out = {1, 1, out_features};
    const tt_geom g = {1, 1, 0, 0, 1, 1};
    const tt_conv_shape s = {&in, &out, 1, 1, &g};
    tt_conv2d_grad_input_s8_dsp(&s, grad_y, w, wq, accumulate, grad_x);
}

void tt_fully_connected_grad_weight_s8_dsp(int32_t out_features, const tt_channels *ch,
                                           const int8_t *x, const tt_act_quant *xq,
                                           const float *grad_y, int32_t accumulate, float *grad_w)
{
    const int32_t k = ch->k;
    float xf[TT_FC_CHUNK];
    int32_t i0, o, i;
    for (i0 = 0; i0 < k; i0 += TT_FC_CHUNK) {
        const int32_t n = k - i0 < TT_FC_CHUNK ? k - i0 : TT_FC_CHUNK;
        tt_fc_inputs_f32(x + i0, xq->zero_point, n, xf);
        for (o = 0; o < out_features; ++o) {
            const float d = grad_y[o] * xq->scale;
            float *gp = grad_w + o * k + i0;
            if (accumulate) {
                for (i = 0; i < n; ++i) gp[i] = gp[i] + d * xf[i];
            } else {
                for (i = 0; i < n; ++i) gp[i] = d * xf[i];
            }
        }
    }
}

/* One output row of the update in mode MODE (a constant where it is inlined, so each mode
 * gets its own loop). */
static inline void update_row(int32_t mode, int8_t *wr, const int32_t *index, const float *xf, int32_t n,
                              float d, float scale, const tt_hparams *hp, const tt_update *u, int32_t e0)
{
    int32_t j;
    for (j = 0; j < n; ++j) {
        const int32_t e = e0 + j;
        int8_t *wp = wr + (index ? index[j] : j);
        const int32_t q = *wp;
        const float step = tt_qas_step(q, d * xf[j], scale, hp, u, e);
        int32_t r;
        switch (mode) {
        case TT_UPDATE_SHADOW: r = tt_qas_shadow_step_fast(q, &u->shadow[e], step, TT_QAS_S8_MIN, TT_QAS_S8_MAX); break;
        case TT_UPDATE_RESIDUAL: r = tt_qas_residual_step_fast(q, &u->residual[e], step, TT_QAS_S8_MIN, TT_QAS_S8_MAX); break;
        case TT_UPDATE_STOCHASTIC:
            r = tt_qas_round_stochastic_fast(q, step, tt_rng_uniform(u->rng, e), TT_QAS_S8_MIN, TT_QAS_S8_MAX);
            break;
        default: r = tt_qas_round_exact_fast(q, step, TT_QAS_S8_MIN, TT_QAS_S8_MAX); break;
        }
        *wp = (int8_t)r;
    }
}

void tt_fully_connected_update_weight_s8_dsp(int32_t out_features, const tt_channels *ch, int8_t *w,
                                             const tt_weight_quant *wq, const int8_t *x,
                                             const tt_act_quant *xq, const float *grad_y,
                                             const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t k = ch->k;
    float xf[TT_FC_CHUNK];
    int32_t i0, o;
    for (i0 = 0; i0 < k; i0 += TT_FC_CHUNK) {
        const int32_t n = k - i0 < TT_FC_CHUNK ? k - i0 : TT_FC_CHUNK;
        const int32_t *index = ch->index ? ch->index + i0 : 0;
        tt_fc_inputs_f32(x + i0, xq->zero_point, n, xf);
        for (o = 0; o < out_features; ++o) {
            const float d = grad_y[o] * xq->scale;
            const float scale = wq->scale[wq->per_channel ? o : 0];
            int8_t *wr = w + o * ch->in_channels + (index ? 0 : i0);
            const int32_t e0 = o * k + i0;
            switch (u->mode) {
            case TT_UPDATE_SHADOW: update_row(TT_UPDATE_SHADOW, wr, index, xf, n, d, scale, &hp, u, e0); break;
            case TT_UPDATE_RESIDUAL: update_row(TT_UPDATE_RESIDUAL, wr, index, xf, n, d, scale, &hp, u, e0); break;
            case TT_UPDATE_STOCHASTIC:
                update_row(TT_UPDATE_STOCHASTIC, wr, index, xf, n, d, scale, &hp, u, e0);
                break;
            default: update_row(TT_UPDATE_NEAREST, wr, index, xf, n, d, scale, &hp, u, e0); break;
            }
        }
    }
    tt_update_advance(u, out_features * k);
}
