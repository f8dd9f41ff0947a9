/* Gradient of mul w.r.t. one operand x: grad_y times the other operand, summed over the
 * output positions that read each element of x. bc: x's strides as a, the other's as b
 * (tt_bcast); the int8 form reads the other operand's real values
 * otherq->scale * (q - otherq->zero_point). */
#include "tt_train_kernels.h"

static void zero_touched(const tt_bcast *bc, float *grad_x)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i)
        for (j = 0; j < bc->w; ++j)
            for (k = 0; k < bc->c; ++k) grad_x[i * bc->a_sh + j * bc->a_sw + k * bc->a_sc] = 0.0f;
}

void tt_mul_grad_input_f32(const tt_bcast *bc, const float *other, const float *grad_y, int32_t accumulate,
                           float *grad_x)
{
    int32_t i, j, k;
    if (!accumulate) zero_touched(bc, grad_x);
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            float *gx = grad_x + i * bc->a_sh + j * bc->a_sw;
            const float *o = other + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) gx[k * bc->a_sc] += *grad_y++ * o[k * bc->b_sc];
        }
    }
}

void tt_mul_grad_input_s8(const tt_bcast *bc, const int8_t *other, const tt_act_quant *otherq,
                          const float *grad_y, int32_t accumulate, float *grad_x)
{
    const float scale = otherq->scale;
    const int32_t zp = otherq->zero_point;
    int32_t i, j, k;
    if (!accumulate) zero_touched(bc, grad_x);
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            float *gx = grad_x + i * bc->a_sh + j * bc->a_sw;
            const int8_t *o = other + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k)
                gx[k * bc->a_sc] += *grad_y++ * (scale * (float)((int32_t)o[k * bc->b_sc] - zp));
        }
    }
}
