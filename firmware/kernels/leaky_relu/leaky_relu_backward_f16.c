/* Gradient of the half-precision leaky relu from the saved (half) input (portable):
 * g = half(grad_y * alpha) where x <= 0, grad_y elsewhere (x > 0, or a NaN: selected, no
 * arithmetic), the exact product of two halves rounded once; stored as g, or accumulated as
 * half(old + g) (tt_add_grad_f16's rounding). Each step is one correctly rounded half
 * operation, so the Helium variant (leaky_relu_f16_mve.c: vmulq_f16, vaddq_f16) stores the
 * same bits (but for the payload of a NaN grad_y, which Helium's arithmetic replaces by the
 * default NaN). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_leaky_relu_grad_input_f16(int32_t n, const tt_f16 *x, tt_f16 alpha, const tt_f16 *grad_y,
                                  int32_t accumulate, tt_f16 *grad_x)
{
    const float a = tt_h2f(alpha);
    int32_t i;
    for (i = 0; i < n; ++i) {
        const tt_f16 g = tt_h2f(x[i]) <= 0.0f ? tt_f2h(tt_h2f(grad_y[i]) * a) : grad_y[i];
        grad_x[i] = accumulate ? tt_f2h(tt_h2f(grad_x[i]) + tt_h2f(g)) : g;
    }
}
