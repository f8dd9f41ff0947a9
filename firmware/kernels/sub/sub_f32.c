/* Float32 elementwise sub, fused activation: equal shapes, and broadcast (tt_bcast). */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_sub_f32(const float *a, const float *b, int32_t n, int32_t act, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = tt_act_f32(a[i] - b[i], act);
}

void tt_sub_bcast_f32(const float *a, const float *b, const tt_bcast *bc, int32_t act, float *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const float *pa = a + i * bc->a_sh + j * bc->a_sw;
            const float *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) *y++ = tt_act_f32(pa[k * bc->a_sc] - pb[k * bc->b_sc], act);
        }
    }
}
