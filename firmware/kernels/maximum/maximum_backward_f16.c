/* Gradients of maximum / minimum in half precision (portable), the float32 training's rule
 * (maximum_backward.c, TensorFlow's _MaximumGrad / _MinimumGrad for ordered operands): x
 * receives grad_y where it wins, x > other (minimum: x < other), or ties with it when x is the
 * op's first operand (`first`); else nothing. A NaN in either operand compares false: the
 * gradient goes to neither (as the float32 kernel; TensorFlow would give it to the second).
 * tt_maximum_grad_input_f16: x has the output's shape (bc's b_* walk the other operand, x
 *   walks as the output): each gradient is grad_y or +0 (exact), accumulating half(old + it)
 *   in one rounding (the Helium variants, maximum_f16_mve.c: the same bits).
 * tt_maximum_grad_bcast_f16: x broadcasts: per element the float sum of the grad_y it wins
 *   over the positions that read it, rounded once (tt_bcast_grad_f16.h).
 * tinytrain/ops/f16.py select_grad is their twin. */
#include "tt_train_kernels.h"
#include "tt_bcast_grad_f16.h"

static inline int32_t wins(float v, float w, int32_t first, int32_t minimum)
{
    return (minimum ? v < w : v > w) || (first && v == w);
}

static void grad_input(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first, int32_t minimum,
                       const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const tt_f16 *o = other + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k, ++x, ++grad_y, ++grad_x) {
                const float g = wins(tt_h2f(*x), tt_h2f(o[k * bc->b_sc]), first, minimum) ? tt_h2f(*grad_y) : 0.0f;
                *grad_x = tt_f2h(accumulate ? tt_h2f(*grad_x) + g : g);
            }
        }
    }
}

typedef struct {
    const tt_f16 *x, *other, *grad_y;
    int32_t first, minimum;
} select_terms;

static float select_term(const void *ctx, int32_t at_y, int32_t at_x, int32_t at_other)
{
    const select_terms *t = (const select_terms *)ctx;
    return wins(tt_h2f(t->x[at_x]), tt_h2f(t->other[at_other]), t->first, t->minimum) ? tt_h2f(t->grad_y[at_y])
                                                                                       : 0.0f;
}

static void grad_bcast(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first, int32_t minimum,
                       const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    const select_terms t = {x, other, grad_y, first, minimum};
    tt_bcast_grad_f16(bc, select_term, &t, accumulate, grad_x);
}

void tt_maximum_grad_input_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    grad_input(bc, x, other, first, 0, grad_y, accumulate, grad_x);
}

void tt_minimum_grad_input_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    grad_input(bc, x, other, first, 1, grad_y, accumulate, grad_x);
}

void tt_maximum_grad_bcast_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    grad_bcast(bc, x, other, first, 0, grad_y, accumulate, grad_x);
}

void tt_minimum_grad_bcast_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    grad_bcast(bc, x, other, first, 1, grad_y, accumulate, grad_x);
}
