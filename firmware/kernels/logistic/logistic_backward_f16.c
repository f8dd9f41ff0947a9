/* Gradient of the half-precision logistic from its saved (half) output (portable): in float
 * g = grad_y * (y * (1 - y)) (tt_logistic_grad_input_f32's order), stored as half(g) or
 * half(old + g) (one rounding). Where y rounded to 0 or 1 the factor is 0 and an infinite
 * grad_y (an overflowed loss scale) makes a NaN, which the dynamic loss scale reports; its
 * sign is the host's (x86 negative, Arm positive). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_logistic_grad_input_f16(int32_t n, const tt_f16 *y, const tt_f16 *grad_y, int32_t accumulate,
                                tt_f16 *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = tt_h2f(y[i]);
        const float g = tt_h2f(grad_y[i]) * (v * (1.0f - v));
        grad_x[i] = tt_f2h(accumulate ? tt_h2f(grad_x[i]) + g : g);
    }
}
