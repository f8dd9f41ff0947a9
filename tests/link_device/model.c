/* The link tests' model: y = W x + b (x dequantized for int8 inputs); train: softmax
 * cross-entropy, SGD with momentum. Like the generated step, a non-finite loss skips the
 * update (tt_link.c then counts the step as rolled back). */
#include "model.h"

#include <math.h>
#include <string.h>

#include "tt_types.h"
#include "tt_argmax.h"

#define N_IN  TT_INPUT_SIZE
#define N_OUT TT_OUTPUT_SIZE

static tt_input_t input[N_IN];
static float logits[N_OUT];
static float weight[N_OUT * N_IN];
static float bias[N_OUT];

tt_input_t *tt_model_input(void) { return input; }
const tt_output_t *tt_model_output(void) { return logits; }

static float x_of(int i)
{
#if TT_INPUT_IS_INT8
    return (float)(input[i] - TT_INPUT_ZERO_POINT) * TT_INPUT_SCALE;
#else
    return input[i];
#endif
}

void tt_model_invoke(void)
{
    int o, i;
    for (o = 0; o < N_OUT; o++) {
        float acc = bias[o];
        for (i = 0; i < N_IN; i++)
            acc += weight[o * N_IN + i] * x_of(i);
        logits[o] = acc;
    }
}

#if TT_MODEL_TRAINABLE
static float weight_v[N_OUT * N_IN], bias_v[N_OUT];
static float lr = 0.1f, momentum = 0.0f, weight_decay = 0.0f;
static int32_t last_prediction;
static const tt_param_info params[2] = {
    { "fc.weight", weight, sizeof weight, TT_DTYPE_F32 },
    { "fc.bias", bias, sizeof bias, TT_DTYPE_F32 },
};
static const tt_param_info states[2] = {
    { "fc.weight.momentum", weight_v, sizeof weight_v, TT_DTYPE_F32 },
    { "fc.bias.momentum", bias_v, sizeof bias_v, TT_DTYPE_F32 },
};

uint32_t tt_model_num_params(void) { return 2; }
const tt_param_info *tt_model_param(uint32_t i) { return &params[i]; }
uint32_t tt_model_num_states(void) { return 2; }
const tt_param_info *tt_model_state(uint32_t i) { return &states[i]; }

void tt_model_set_hparams(float l, float m, float wd) { lr = l; momentum = m; weight_decay = wd; }
void tt_model_get_hparams(float *l, float *m, float *wd) { *l = lr; *m = momentum; *wd = weight_decay; }
int32_t tt_model_last_prediction(void) { return last_prediction; }

void tt_model_reset_optimizer(void)
{
    memset(weight_v, 0, sizeof weight_v);
    memset(bias_v, 0, sizeof bias_v);
}

void tt_model_set_update_seed(uint32_t seed) { (void)seed; }

float tt_model_train_step(int32_t label)
{
    float p[N_OUT], mx, sum = 0.0f, loss;
    int o, i;
    tt_model_invoke();
    last_prediction = (int32_t)tt_argmax_f32(logits, N_OUT);    /* as the generated model picks it */
    mx = logits[last_prediction];
    for (o = 0; o < N_OUT; o++) {
        p[o] = expf(logits[o] - mx);
        sum += p[o];
    }
    loss = logf(sum) + mx - logits[label];
    if (!(loss - loss == 0.0f))
        return loss;
    for (o = 0; o < N_OUT; o++) {
        float g = p[o] / sum - (o == label ? 1.0f : 0.0f);
        for (i = 0; i < N_IN; i++) {
            float *w = &weight[o * N_IN + i];
            weight_v[o * N_IN + i] = momentum * weight_v[o * N_IN + i] + g * x_of(i) + weight_decay * *w;
            *w -= lr * weight_v[o * N_IN + i];
        }
        bias_v[o] = momentum * bias_v[o] + g;
        bias[o] -= lr * bias_v[o];
    }
    return loss;
}
#endif
