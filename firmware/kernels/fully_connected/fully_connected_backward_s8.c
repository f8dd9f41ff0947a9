/* fully connected backward of int8 graphs: int8 weights / saved inputs dequantized
 * on the fly, float gradients, fused QAS weight update (no scratch). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_update_rules.h"

void tt_fully_connected_grad_input_s8(int32_t in_features, int32_t out_features,
                                      const float *grad_y, const int8_t *w,
                                      const tt_weight_quant *wq, int32_t accumulate,
                                      float *grad_x)
{
    int32_t o, i;
    tt_zero_unless_f32(grad_x, in_features, accumulate);
    for (o = 0; o < out_features; ++o) {
        const int8_t *wp = w + o * in_features;
        float d = grad_y[o];
        if (d == 0.0f) continue;
        d = d * wq->scale[wq->per_channel ? o : 0];
        for (i = 0; i < in_features; ++i) grad_x[i] += d * (float)wp[i];
    }
}

void tt_fully_connected_grad_weight_s8(int32_t out_features, const tt_channels *ch,
                                       const int8_t *x, const tt_act_quant *xq,
                                       const float *grad_y, int32_t accumulate, float *grad_w)
{
    const int32_t k = ch->k;
    int32_t o, i;
    for (o = 0; o < out_features; ++o) {
        const float d = grad_y[o] * xq->scale;
        float *gp = grad_w + o * k;
        for (i = 0; i < k; ++i) {
            const float v = d * (float)((int32_t)x[i] - xq->zero_point);
            gp[i] = accumulate ? gp[i] + v : v;
        }
    }
}

void tt_fully_connected_update_weight_s8(int32_t out_features, const tt_channels *ch, int8_t *w,
                                         const tt_weight_quant *wq, const int8_t *x,
                                         const tt_act_quant *xq, const float *grad_y,
                                         const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const float x_scale = xq->scale;
    const int32_t x_zp = xq->zero_point, k = ch->k;
    int32_t o, j;
    for (o = 0; o < out_features; ++o) {
        const float d = grad_y[o] * x_scale;
        const float scale = wq->scale[wq->per_channel ? o : 0];
        int8_t *wr = w + o * ch->in_channels;
        for (j = 0; j < k; ++j) {
            const int32_t e = o * k + j;
            int8_t *wp = wr + (ch->index ? ch->index[j] : j);
            *wp = (int8_t)tt_qas_rule(*wp, d * (float)((int32_t)x[j] - x_zp), scale, &hp, u, e,
                                      TT_QAS_S8_MIN, TT_QAS_S8_MAX);
        }
    }
    tt_update_advance(u, out_features * k);
}
