/* Float32 maximum / minimum (TFLite's el1 > el2 ? el1 : el2): equal shapes, and broadcast. */
#include "tt_kernels.h"

void tt_maximum_f32(const float *a, const float *b, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = a[i] > b[i] ? a[i] : b[i];
}

void tt_minimum_f32(const float *a, const float *b, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = a[i] < b[i] ? a[i] : b[i];
}

static void max_min_bcast(const float *a, const float *b, const tt_bcast *bc, int32_t minimum, float *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const float *pa = a + i * bc->a_sh + j * bc->a_sw;
            const float *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) {
                const float va = pa[k * bc->a_sc], vb = pb[k * bc->b_sc];
                *y++ = minimum ? (va < vb ? va : vb) : (va > vb ? va : vb);
            }
        }
    }
}

void tt_maximum_bcast_f32(const float *a, const float *b, const tt_bcast *bc, float *y)
{
    max_min_bcast(a, b, bc, 0, y);
}

void tt_minimum_bcast_f32(const float *a, const float *b, const tt_bcast *bc, float *y)
{
    max_min_bcast(a, b, bc, 1, y);
}
