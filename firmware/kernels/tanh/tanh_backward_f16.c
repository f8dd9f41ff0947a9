/* Gradient of the half-precision tanh from its saved (half) output (portable): in float
 * g = grad_y * (1 - y * y) (tt_tanh_grad_input_f32's order), stored as half(g) or
 * half(old + g) (one rounding). Where y rounded to +-1 the factor is 0 and an infinite grad_y
 * makes a NaN (reported by the dynamic loss scale; its sign is the host's). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_tanh_grad_input_f16(int32_t n, const tt_f16 *y, const tt_f16 *grad_y, int32_t accumulate,
                            tt_f16 *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = tt_h2f(y[i]);
        const float g = tt_h2f(grad_y[i]) * (1.0f - v * v);
        grad_x[i] = tt_f2h(accumulate ? tt_h2f(grad_x[i]) + g : g);
    }
}
