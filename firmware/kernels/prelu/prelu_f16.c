/* Half-precision prelu (portable): x < 0 ? half(x * alpha) : x (a NaN stored as it came),
 * alpha a half constant, equal-shaped or broadcast (tt_bcast: x has the output's shape, alpha
 * the b strides). As for leaky relu the product of two halves is exact in float and rounded
 * once: the Helium variants (prelu_f16_mve.c) store the same bits (tinytrain/ops/prelu.py
 * prelu_f16). */
#include "tt_kernels.h"
#include "tt_f16.h"

static tt_f16 prelu_one(tt_f16 x, tt_f16 alpha)
{
    const float v = tt_h2f(x);
    return v < 0.0f ? tt_f2h(v * tt_h2f(alpha)) : x;
}

void tt_prelu_f16(const tt_f16 *x, const tt_f16 *alpha, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = prelu_one(x[i], alpha[i]);
}

void tt_prelu_bcast_f16(const tt_f16 *x, const tt_f16 *alpha, const tt_bcast *bc, tt_f16 *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *px = x + i * bc->a_sh + j * bc->a_sw;
            const tt_f16 *pa = alpha + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) *y++ = prelu_one(px[k * bc->a_sc], pa[k * bc->b_sc]);
        }
    }
}
