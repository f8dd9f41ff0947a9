/* float prelu, as TFLite's: x >= 0 ? x : x * alpha (alpha equal-shaped, or broadcast). */
#include "tt_kernels.h"

void tt_prelu_f32(const float *x, const float *alpha, int32_t n, float *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = x[i] >= 0.0f ? x[i] : x[i] * alpha[i];
}

void tt_prelu_bcast_f32(const float *x, const float *alpha, const tt_bcast *bc, float *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const float *px = x + i * bc->a_sh + j * bc->a_sw;
            const float *pa = alpha + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) {
                const float v = px[k * bc->a_sc];
                *y++ = v >= 0.0f ? v : v * pa[k * bc->b_sc];
            }
        }
    }
}
