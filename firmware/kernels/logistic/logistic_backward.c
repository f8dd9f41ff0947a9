/* Gradient of logistic from the saved output y: grad_x = grad_y * (y * (1 - y)) (the int8 form
 * reads real values yq->scale * (y - yq->zero_point)). */
#include "tt_train_kernels.h"

void tt_logistic_grad_input_f32(int32_t n, const float *y, const float *grad_y, int32_t accumulate, float *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float g = grad_y[i] * (y[i] * (1.0f - y[i]));
        grad_x[i] = accumulate ? grad_x[i] + g : g;
    }
}

void tt_logistic_grad_input_s8(int32_t n, const int8_t *y, const tt_act_quant *yq, const float *grad_y,
                               int32_t accumulate, float *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = yq->scale * (float)((int32_t)y[i] - yq->zero_point);
        const float g = grad_y[i] * (v * (1.0f - v));
        grad_x[i] = accumulate ? grad_x[i] + g : g;
    }
}
