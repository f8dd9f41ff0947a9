/* Gradient of hard swish w.r.t. its input, from the saved input: 0 below -3, 1 above 3,
 * (2x + 3) / 6 between (the real input of an int8 graph is scale * (q - zp)). */
#include "tt_train_kernels.h"

static float dhard_swish(float x)
{
    if (x < -3.0f) return 0.0f;
    if (x > 3.0f) return 1.0f;
    return (2.0f * x + 3.0f) / 6.0f;
}

void tt_hard_swish_grad_input_f32(int32_t n, const float *x, const float *grad_y, int32_t accumulate,
                                  float *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float g = grad_y[i] * dhard_swish(x[i]);
        grad_x[i] = accumulate ? grad_x[i] + g : g;
    }
}

void tt_hard_swish_grad_input_s8(int32_t n, const int8_t *x, const tt_act_quant *xq, const float *grad_y,
                                 int32_t accumulate, float *grad_x)
{
    const float scale = xq->scale;
    const int32_t zp = xq->zero_point;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float g = grad_y[i] * dhard_swish(scale * (float)((int32_t)x[i] - zp));
        grad_x[i] = accumulate ? grad_x[i] + g : g;
    }
}
