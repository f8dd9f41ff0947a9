/* The gather walk of a broadcast operand's gradient in half precision (mul, maximum /
 * minimum): per element of operand x (its own axes h, w, c in order) the float sum, from 0,
 * of term(output position, x's index, the other operand's index) over the output positions
 * that read it (the axes x broadcasts along, h, w, c in row-major order), stored as
 * half(sum) or, accumulating, half(old + sum): one rounding per element.
 * bc: x's strides as a, the other operand's as b (tt_bcast). `term` is a static function of
 * the including kernel, inlined with the walk (always_inline: no call per term). */
#ifndef TT_BCAST_GRAD_F16_H
#define TT_BCAST_GRAD_F16_H

#include "tt_f16.h"

typedef float (*tt_bcast_term_f16)(const void *ctx, int32_t at_y, int32_t at_x, int32_t at_other);

static inline __attribute__((always_inline)) void tt_bcast_grad_f16(const tt_bcast *bc, tt_bcast_term_f16 term,
                                                                    const void *ctx, int32_t accumulate,
                                                                    tt_f16 *grad_x)
{
    /* along each output axis x either has it (stride != 0: walked outside) or broadcasts
     * along it (summed inside) */
    const int32_t kh = bc->a_sh ? bc->h : 1, kw = bc->a_sw ? bc->w : 1, kc = bc->a_sc ? bc->c : 1;
    const int32_t rh = bc->a_sh ? 1 : bc->h, rw = bc->a_sw ? 1 : bc->w, rc = bc->a_sc ? 1 : bc->c;
    int32_t i, j, k, ri, rj, rk;
    for (i = 0; i < kh; ++i) {
        for (j = 0; j < kw; ++j) {
            for (k = 0; k < kc; ++k) {
                const int32_t at = i * bc->a_sh + j * bc->a_sw + k * bc->a_sc;
                float sum = 0.0f;
                for (ri = 0; ri < rh; ++ri) {
                    const int32_t y = bc->a_sh ? i : ri;
                    for (rj = 0; rj < rw; ++rj) {
                        const int32_t x = bc->a_sw ? j : rj;
                        for (rk = 0; rk < rc; ++rk) {
                            const int32_t c = bc->a_sc ? k : rk;
                            sum += term(ctx, (y * bc->w + x) * bc->c + c, at, y * bc->b_sh + x * bc->b_sw + c * bc->b_sc);
                        }
                    }
                }
                grad_x[at] = tt_f2h(accumulate ? tt_h2f(grad_x[at]) + sum : sum);
            }
        }
    }
}

#endif
