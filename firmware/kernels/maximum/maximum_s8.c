/* int8 maximum / minimum, LiteRT's reference MaximumMinimumBroadcastSlow: the raw int8 values
 * compared (inputs and output share one quantization). Equal shapes, and broadcast. */
#include "tt_kernels.h"

void tt_maximum_s8(const int8_t *a, const int8_t *b, int32_t n, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = a[i] > b[i] ? a[i] : b[i];
}

void tt_minimum_s8(const int8_t *a, const int8_t *b, int32_t n, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = a[i] < b[i] ? a[i] : b[i];
}

static void max_min_bcast(const int8_t *a, const int8_t *b, const tt_bcast *bc, int32_t minimum, int8_t *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int8_t *pa = a + i * bc->a_sh + j * bc->a_sw;
            const int8_t *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) {
                const int8_t va = pa[k * bc->a_sc], vb = pb[k * bc->b_sc];
                *y++ = minimum ? (va < vb ? va : vb) : (va > vb ? va : vb);
            }
        }
    }
}

void tt_maximum_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, int8_t *y)
{
    max_min_bcast(a, b, bc, 0, y);
}

void tt_minimum_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, int8_t *y)
{
    max_min_bcast(a, b, bc, 1, y);
}
