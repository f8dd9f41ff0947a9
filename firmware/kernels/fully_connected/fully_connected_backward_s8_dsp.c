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
 * - update_weight: the same gradient products, then the QAS rule of tt_update_rules.h
 *   (tt_qas_step_of) with its rounding through tt_update_fast.h (bit-identical, without
 *   libm's floorf or 64-bit arithmetic); one loop per update mode, chosen once per row
 *   instead of once per weight, with everything it reads in locals. */
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
    struct tt_fc_conv c;
    tt_conv2d_grad_input_s8_dsp(tt_fc_as_conv(&c, in_features, out_features), grad_y, w, wq, accumulate, grad_x);
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
            } else {        /* four at a time: the loop's overhead over four elements */
                for (i = 0; i + 4 <= n; i += 4) {
                    const float a = d * xf[i], b = d * xf[i + 1], c = d * xf[i + 2], e = d * xf[i + 3];
                    gp[i] = a;
                    gp[i + 1] = b;
                    gp[i + 2] = c;
                    gp[i + 3] = e;
                }
                for (; i < n; ++i) gp[i] = d * xf[i];
            }
        }
    }
}

/* What one output row's update reads, in locals the loops keep in registers (the weights
 * they store are bytes, which may alias anything: read through pointers, every field would
 * be reloaded per weight). */
typedef struct {
    int8_t *wr;                 /* the row's weights (trained channel j at index[j], or j) */
    const int32_t *index;
    const float *xf;            /* x - zp, as floats */
    int32_t n, e0;              /* weights, and the first one's element index */
    float d, scale, lr, mu, wd;
    float *m;                   /* momentum (NULL: none), at e0 */
} fc_row;

#define FC_ROW_LOOP(BODY)                                                           \
    do {                                                                             \
        int32_t j;                                                                   \
        for (j = 0; j < r->n; ++j) {                                                 \
            int8_t *wp = r->wr + (r->index ? r->index[j] : j);                       \
            const int32_t q = *wp;                                                   \
            float *m = r->m ? r->m + j : 0;                                          \
            BODY                                                                     \
        }                                                                            \
    } while (0)

static void row_nearest(const fc_row *r)
{
    FC_ROW_LOOP({
        const float step = tt_qas_step_of((float)q, r->d * r->xf[j], r->scale, r->lr, r->mu, r->wd, m);
        *wp = (int8_t)tt_qas_round_exact_fast(q, step, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
    });
}

static void row_stochastic(const fc_row *r, const tt_rng *rng)
{
    FC_ROW_LOOP({
        const float step = tt_qas_step_of((float)q, r->d * r->xf[j], r->scale, r->lr, r->mu, r->wd, m);
        *wp = (int8_t)tt_qas_round_stochastic_fast(q, step, tt_rng_uniform(rng, r->e0 + j), TT_QAS_S8_MIN,
                                                   TT_QAS_S8_MAX);
    });
}

static void row_residual(const fc_row *r, int8_t *res)
{
    FC_ROW_LOOP({
        const float v = (float)q + (float)res[j] * 0x1p-8f;
        const float step = tt_qas_step_of(v, r->d * r->xf[j], r->scale, r->lr, r->mu, r->wd, m);
        *wp = (int8_t)tt_qas_residual_step_fast(q, &res[j], step, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
    });
}

static void row_shadow(const fc_row *r, float *shadow)
{
    FC_ROW_LOOP({
        const float step = tt_qas_step_of(shadow[j], r->d * r->xf[j], r->scale, r->lr, r->mu, r->wd, m);
        *wp = (int8_t)tt_qas_shadow_step_fast(q, &shadow[j], step, TT_QAS_S8_MIN, TT_QAS_S8_MAX);
    });
}

void tt_fully_connected_update_weight_s8_dsp(int32_t out_features, const tt_channels *ch, int8_t *w,
                                             const tt_weight_quant *wq, const int8_t *x,
                                             const tt_act_quant *xq, const float *grad_y,
                                             const tt_update *u)
{
    const tt_hparams hp = *u->hp;
    const int32_t k = ch->k, mode = u->mode;
    float xf[TT_FC_CHUNK];
    fc_row r;
    int32_t i0, o;
    r.xf = xf;
    r.lr = hp.lr;
    r.mu = hp.momentum;
    r.wd = hp.weight_decay;
    for (i0 = 0; i0 < k; i0 += TT_FC_CHUNK) {
        r.n = k - i0 < TT_FC_CHUNK ? k - i0 : TT_FC_CHUNK;
        r.index = ch->index ? ch->index + i0 : 0;
        tt_fc_inputs_f32(x + i0, xq->zero_point, r.n, xf);
        for (o = 0; o < out_features; ++o) {
            r.d = grad_y[o] * xq->scale;
            r.scale = wq->scale[wq->per_channel ? o : 0];
            r.wr = w + o * ch->in_channels + (r.index ? 0 : i0);
            r.e0 = o * k + i0;
            r.m = u->momentum ? u->momentum + r.e0 : 0;
            if (mode == TT_UPDATE_SHADOW) row_shadow(&r, u->shadow + r.e0);
            else if (mode == TT_UPDATE_RESIDUAL) row_residual(&r, u->residual + r.e0);
            else if (mode == TT_UPDATE_STOCHASTIC) row_stochastic(&r, u->rng);
            else row_nearest(&r);
        }
    }
    tt_update_advance(u, out_features * k);
}
