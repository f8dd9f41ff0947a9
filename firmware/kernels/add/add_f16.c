/* Half-precision elementwise add (portable): each sum in float (the operands widened
 * exactly), the activation, one rounding to half; equal shapes, and broadcast (tt_bcast).
 * The float sum of two halves rounded to half is the correctly rounded half sum (float's 24
 * bits >= 2 * 11 + 2: the double rounding is innocuous), so the Helium variant's vaddq_f16
 * (add_f16_mve.c) stores the same bits. */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_add_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_f2h(tt_act_f16(tt_h2f(a[i]) + tt_h2f(b[i]), act));
}

void tt_add_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *pa = a + i * bc->a_sh + j * bc->a_sw;
            const tt_f16 *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k)
                *y++ = tt_f2h(tt_act_f16(tt_h2f(pa[k * bc->a_sc]) + tt_h2f(pb[k * bc->b_sc]), act));
        }
    }
}
