/* Gradient of prelu w.r.t. its input x (alpha is a constant): grad_y where x > 0, alpha *
 * grad_y elsewhere. x has the output's shape (bc's a strides), alpha broadcasts (b strides);
 * the int8 form tests q > xq->zero_point and reads alpha's real values
 * alphaq->scale * (q - alphaq->zero_point). */
#include "tt_train_kernels.h"

void tt_prelu_grad_input_f32(const tt_bcast *bc, const float *x, const float *alpha, const float *grad_y,
                             int32_t accumulate, float *grad_x)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const float *pa = alpha + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++x, ++grad_y, ++grad_x) {
                const float g = *x > 0.0f ? *grad_y : *grad_y * pa[k * bc->b_sc];
                *grad_x = accumulate ? *grad_x + g : g;
            }
        }
    }
}

void tt_prelu_grad_input_s8(const tt_bcast *bc, const int8_t *x, const tt_act_quant *xq, const int8_t *alpha,
                            const tt_act_quant *alphaq, const float *grad_y, int32_t accumulate, float *grad_x)
{
    const float alpha_scale = alphaq->scale;
    const int32_t x_zp = xq->zero_point, alpha_zp = alphaq->zero_point;
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int8_t *pa = alpha + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++x, ++grad_y, ++grad_x) {
                const float a = alpha_scale * (float)((int32_t)pa[k * bc->b_sc] - alpha_zp);
                const float g = (int32_t)*x > x_zp ? *grad_y : *grad_y * a;
                *grad_x = accumulate ? *grad_x + g : g;
            }
        }
    }
}
