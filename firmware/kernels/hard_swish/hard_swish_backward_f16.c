/* Gradient of the half-precision hard swish from the saved (half) input (portable), in float:
 * 0 below -3, grad_y above 3, grad_y * ((2x + 3) / 6) between (tt_hard_swish_grad_input_f32's
 * order), stored as half(g) or half(old + g) (one rounding). The outer branches select
 * instead of multiplying by 0 or 1, so an infinite grad_y (a loss scale that overflowed) makes
 * no NaN there (0 * inf: its sign is the host's). At a NaN x the gradient is the default NaN
 * (C's NAN, not the NaN of arithmetic on x, whose payload Helium would not keep).
 * tinytrain/ops/hard_swish.py
 * hard_swish_grad_f16 is its twin; the Helium variant computes in half (its own model). */
#include "tt_train_kernels.h"
#include <math.h>
#include "tt_f16.h"

void tt_hard_swish_grad_input_f16(int32_t n, const tt_f16 *x, const tt_f16 *grad_y, int32_t accumulate,
                                  tt_f16 *grad_x)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = tt_h2f(x[i]), d = tt_h2f(grad_y[i]);
        const float g = v != v ? NAN : v < -3.0f ? 0.0f : (v > 3.0f ? d : d * ((2.0f * v + 3.0f) / 6.0f));
        grad_x[i] = tt_f2h(accumulate ? tt_h2f(grad_x[i]) + g : g);
    }
}
