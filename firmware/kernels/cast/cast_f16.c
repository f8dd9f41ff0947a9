/* Conversions at the edges of a half-precision graph (the model's input and output stay
 * float32): float32 -> half rounds to nearest even, half -> float32 is exact. The gradient
 * that enters the half-precision backward is multiplied by the loss scale first. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_cast_f32_to_f16(const float *x, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_f2h(x[i]);
}

void tt_cast_f16_to_f32(const tt_f16 *x, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_h2f(x[i]);
}

void tt_cast_grad_f32_to_f16(const float *grad_y, int32_t n, const tt_loss_scale *ls, tt_f16 *grad_x)
{
    const float scale = ls->scale;
    int32_t i;
    for (i = 0; i < n; ++i) grad_x[i] = tt_f2h(grad_y[i] * scale);
}
