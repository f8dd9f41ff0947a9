/* Gradient of maximum / minimum w.r.t. operand x (TensorFlow's _MaximumGrad / _MinimumGrad):
 * grad_y where x wins against the other operand, summed over the output positions that read
 * each element of x. `first`: x is the op's first operand, which wins ties. bc: x's strides
 * as a, the other's as b. int8: the raw values compare as the real ones (one quantization). */
#include "tt_train_kernels.h"

static void zero_touched(const tt_bcast *bc, float *grad_x)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i)
        for (j = 0; j < bc->w; ++j)
            for (k = 0; k < bc->c; ++k) grad_x[i * bc->a_sh + j * bc->a_sw + k * bc->a_sc] = 0.0f;
}

/* minimum: 0 for maximum (x wins when larger), 1 for minimum (when smaller) */
static void grad_f32(const float *x, const float *other, const tt_bcast *bc, int32_t first, int32_t minimum,
                     const float *grad_y, int32_t accumulate, float *grad_x)
{
    int32_t i, j, k;
    if (!accumulate) zero_touched(bc, grad_x);
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int32_t ox = i * bc->a_sh + j * bc->a_sw, oo = i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++grad_y) {
                const float v = x[ox + k * bc->a_sc], w = other[oo + k * bc->b_sc];
                const int32_t wins = minimum ? v < w : v > w;
                if (wins || (first && v == w)) grad_x[ox + k * bc->a_sc] += *grad_y;
            }
        }
    }
}

static void grad_s8(const int8_t *x, const int8_t *other, const tt_bcast *bc, int32_t first, int32_t minimum,
                    const float *grad_y, int32_t accumulate, float *grad_x)
{
    int32_t i, j, k;
    if (!accumulate) zero_touched(bc, grad_x);
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int32_t ox = i * bc->a_sh + j * bc->a_sw, oo = i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++grad_y) {
                const int32_t v = x[ox + k * bc->a_sc], w = other[oo + k * bc->b_sc];
                const int32_t wins = minimum ? v < w : v > w;
                if (wins || (first && v == w)) grad_x[ox + k * bc->a_sc] += *grad_y;
            }
        }
    }
}

void tt_maximum_grad_input_f32(const tt_bcast *bc, const float *x, const float *other, int32_t first,
                               const float *grad_y, int32_t accumulate, float *grad_x)
{
    grad_f32(x, other, bc, first, 0, grad_y, accumulate, grad_x);
}

void tt_minimum_grad_input_f32(const tt_bcast *bc, const float *x, const float *other, int32_t first,
                               const float *grad_y, int32_t accumulate, float *grad_x)
{
    grad_f32(x, other, bc, first, 1, grad_y, accumulate, grad_x);
}

void tt_maximum_grad_input_s8(const tt_bcast *bc, const int8_t *x, const int8_t *other, int32_t first,
                              const float *grad_y, int32_t accumulate, float *grad_x)
{
    grad_s8(x, other, bc, first, 0, grad_y, accumulate, grad_x);
}

void tt_minimum_grad_input_s8(const tt_bcast *bc, const int8_t *x, const int8_t *other, int32_t first,
                              const float *grad_y, int32_t accumulate, float *grad_x)
{
    grad_s8(x, other, bc, first, 1, grad_y, accumulate, grad_x);
}
