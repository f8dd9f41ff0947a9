/* Gradient of leaky relu from the saved input x (TensorFlow's LeakyReluGrad): grad_y where
 * x > 0, alpha * grad_y elsewhere (int8: x > 0 is q > xq->zero_point). */
#include "tt_train_kernels.h"

void tt_leaky_relu_grad_input_f32(int32_t n, const float *x, float alpha, const float *grad_y,
                                  int32_t accumulate, float *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float g = x[i] > 0.0f ? grad_y[i] : grad_y[i] * alpha;
        grad_x[i] = accumulate ? grad_x[i] + g : g;
    }
}

void tt_leaky_relu_grad_input_s8(int32_t n, const int8_t *x, const tt_act_quant *xq, float alpha,
                                 const float *grad_y, int32_t accumulate, float *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float g = (int32_t)x[i] > xq->zero_point ? grad_y[i] : grad_y[i] * alpha;
        grad_x[i] = accumulate ? grad_x[i] + g : g;
    }
}
