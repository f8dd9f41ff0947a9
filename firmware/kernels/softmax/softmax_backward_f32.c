/* Softmax backward from its saved output: dx = y * (dy - sum(dy * y)), per row. */
#include "tt_train_kernels.h"

void tt_softmax_grad_input_f32(int32_t rows, int32_t depth, const float *y, const float *grad_y,
                               int32_t accumulate, float *grad_x)
{
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        const float *yr = y + r * depth, *gr = grad_y + r * depth;
        float *gx = grad_x + r * depth;
        float dot = 0.0f;
        for (i = 0; i < depth; ++i) dot += gr[i] * yr[i];
        for (i = 0; i < depth; ++i) {
            const float v = yr[i] * (gr[i] - dot);
            gx[i] = accumulate ? gx[i] + v : v;
        }
    }
}
