/* Half-precision maximum / minimum (portable): the float32 kernels' selection on the widened
 * operands, `a > b ? a : b` (minimum `a < b ? a : b`, TFLite's el1 > el2 ? el1 : el2), the
 * selected operand's bits stored (no arithmetic, nothing rounded). NaN: every compare with a
 * NaN is false, so a NaN first operand gives the second operand and a NaN second operand
 * gives that NaN; of +0 and -0 (equal) the second. The Helium variants (maximum_f16_mve.c)
 * compare and select the same way. tinytrain/ops/f16.py `select` is the twin. */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_maximum_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_h2f(a[i]) > tt_h2f(b[i]) ? a[i] : b[i];
}

void tt_minimum_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_h2f(a[i]) < tt_h2f(b[i]) ? a[i] : b[i];
}

static void max_min_bcast(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t minimum, tt_f16 *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *pa = a + i * bc->a_sh + j * bc->a_sw;
            const tt_f16 *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) {
                const tt_f16 ha = pa[k * bc->a_sc], hb = pb[k * bc->b_sc];
                const float va = tt_h2f(ha), vb = tt_h2f(hb);
                *y++ = (minimum ? va < vb : va > vb) ? ha : hb;
            }
        }
    }
}

void tt_maximum_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y)
{
    max_min_bcast(a, b, bc, 0, y);
}

void tt_minimum_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y)
{
    max_min_bcast(a, b, bc, 1, y);
}
