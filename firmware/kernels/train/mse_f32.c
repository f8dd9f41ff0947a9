/* Mean squared error: mean((y - t)^2); grad = 2 (y - t) / n. */
#include "tt_train_kernels.h"

float tt_mse_f32(const float *y, const float *target, int32_t n, float *grad)
{
    float sum = 0.0f;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float d = y[i] - target[i];
        sum += d * d;
        grad[i] = 2.0f * d / (float)n;
    }
    return sum / (float)n;
}
