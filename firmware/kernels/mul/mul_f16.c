/* Half-precision elementwise mul (portable): each product in float (the operands widened
 * exactly: a product of two halves has at most 22 significant bits, so it is exact in
 * float, subnormal halves included), the activation, one rounding to half: the correctly
 * rounded half product, which the Helium variant's vmulq_f16 (mul_f16_mve.c) stores too.
 * Equal shapes, and broadcast (tt_bcast). tinytrain/ops/f16.py `binary` is the twin. */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_mul_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_f2h(tt_act_f16(tt_h2f(a[i]) * tt_h2f(b[i]), act));
}

void tt_mul_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *pa = a + i * bc->a_sh + j * bc->a_sw;
            const tt_f16 *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k)
                *y++ = tt_f2h(tt_act_f16(tt_h2f(pa[k * bc->a_sc]) * tt_h2f(pb[k * bc->b_sc]), act));
        }
    }
}
