/* conv2d input gradient of int8 graphs for cores without vector floats (Cortex-M4/M7 and
 * the host): tt_conv2d_grad_input_s8's result, float for float (declared in
 * tt_kernels_simd.h). The walk and why it keeps the reference's floats:
 * tt_grad_input_walk.h; here the row: eight elements stay in float registers over the
 * whole channel list, their weights read four at a time. */
#include "tt_train_kernels.h"
#include "tt_kernels_simd.h"
#include "tt_grad_input_walk.h"

TT_GI_INLINE void row_dsp(float *gx, int32_t cin, const tt_gi_list *l, int32_t tap)
{
    const int32_t n = l->n;
    int32_t i, j;
    for (i = 0; i + 8 <= cin; i += 8) {
        float a0 = gx[i], a1 = gx[i + 1], a2 = gx[i + 2], a3 = gx[i + 3];
        float a4 = gx[i + 4], a5 = gx[i + 5], a6 = gx[i + 6], a7 = gx[i + 7];
        for (j = 0; j < n; ++j) {
            const int8_t *wp = l->w[j] + tap + i;
            const int32_t lo = tt_load_s8x4(wp), hi = tt_load_s8x4(wp + 4);
            const float d = l->d[j];
            a0 += d * (float)(int8_t)lo;
            a1 += d * (float)(int8_t)(lo >> 8);
            a2 += d * (float)(int8_t)(lo >> 16);
            a3 += d * (float)(lo >> 24);
            a4 += d * (float)(int8_t)hi;
            a5 += d * (float)(int8_t)(hi >> 8);
            a6 += d * (float)(int8_t)(hi >> 16);
            a7 += d * (float)(hi >> 24);
        }
        gx[i] = a0; gx[i + 1] = a1; gx[i + 2] = a2; gx[i + 3] = a3;
        gx[i + 4] = a4; gx[i + 5] = a5; gx[i + 6] = a6; gx[i + 7] = a7;
    }
    for (; i < cin; ++i) {
        float a = gx[i];
        for (j = 0; j < n; ++j) a += l->d[j] * (float)l->w[j][tap + i];
        gx[i] = a;
    }
}

void tt_conv2d_grad_input_s8_dsp(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                 const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    tt_conv2d_grad_input_walk(s, grad_y, w, wq, accumulate, grad_x, row_dsp);
}
