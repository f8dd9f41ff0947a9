/* Gradient of the half-precision prelu w.r.t. its input x (alpha is a constant, as in float32
 * training: no gradient), from the saved (half) input (portable): g = half(grad_y * alpha)
 * where x <= 0, grad_y elsewhere (x > 0 or a NaN); stored as g or accumulated as
 * half(old + g). x and grad_y have the output's shape, alpha broadcasts (bc's b strides).
 * The Helium variant (prelu_f16_mve.c) stores the same bits (a NaN grad_y aside, as for
 * leaky relu). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_prelu_grad_input_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *alpha, const tt_f16 *grad_y,
                             int32_t accumulate, tt_f16 *grad_x)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *pa = alpha + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++x, ++grad_y, ++grad_x) {
                const tt_f16 g = tt_h2f(*x) <= 0.0f ? tt_f2h(tt_h2f(*grad_y) * tt_h2f(pa[k * bc->b_sc])) : *grad_y;
                *grad_x = accumulate ? tt_f2h(tt_h2f(*grad_x) + tt_h2f(g)) : g;
            }
        }
    }
}
