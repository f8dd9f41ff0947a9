/* Gradients of mul in half precision (portable), d x = d y * other:
 * tt_mul_grad_input_f16: x has the output's shape (the other operand may broadcast, through
 *   its strides b_* of bc; x's a_* are not read: x walks as the output). Each gradient is
 *   the half product half(gy * o) (exact in float, rounded once); accumulating, that half is
 *   added to the old one in one more rounding, half(old + half(gy * o)), as tt_add_grad_f16
 *   adds two gradients: the Helium variant (vmulq_f16 then vaddq_f16, mul_f16_mve.c) stores
 *   the same bits.
 * tt_mul_grad_bcast_f16: x broadcasts (a per-channel factor, squeeze-excite's (1,1,1,C)
 *   gate, a scalar): per element of x the float sum, from 0, of gy * o over the output
 *   positions that read it, the broadcast axes in row-major order (tt_bcast_grad_f16.h),
 *   rounded once: half(sum), or half(old + sum).
 * tinytrain/ops/f16.py mul_grad / bcast_sum are their twins. */
#include "tt_train_kernels.h"
#include "tt_bcast_grad_f16.h"

void tt_mul_grad_input_f16(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y, int32_t accumulate,
                           tt_f16 *grad_x)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *o = other + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++grad_x) {
                const tt_f16 g = tt_f2h(tt_h2f(*grad_y++) * tt_h2f(o[k * bc->b_sc]));
                *grad_x = accumulate ? tt_f2h(tt_h2f(*grad_x) + tt_h2f(g)) : g;
            }
        }
    }
}

typedef struct {
    const tt_f16 *grad_y, *other;
} mul_terms;

static float mul_term(const void *ctx, int32_t at_y, int32_t at_x, int32_t at_other)
{
    const mul_terms *t = (const mul_terms *)ctx;
    (void)at_x;
    return tt_h2f(t->grad_y[at_y]) * tt_h2f(t->other[at_other]);
}

void tt_mul_grad_bcast_f16(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y, int32_t accumulate,
                           tt_f16 *grad_x)
{
    const mul_terms t = {grad_y, other};
    tt_bcast_grad_f16(bc, mul_term, &t, accumulate, grad_x);
}
