/* Gradients of add / sub in half precision (portable).
 * tt_add_grad_f16: dst = half(dst + src), a tensor read by several ops (one rounding; as
 * for the forward, the Helium vaddq_f16 of add_f16_mve.c gives the same bits).
 * tt_add_grad_bcast_f16: the gradient of an operand that was broadcast (or of sub's second
 * operand, sign -1), in gather form so that each element is rounded once: per element of the
 * operand (its own axes h, w, c in order) the float sum, from 0, of grad_y over the output
 * positions that read it (the broadcast axes h, w, c in row-major order), times sign, then
 * stored as half(sum) or half(old + sum). tinytrain/ops/f16.py add_grad_bcast is its twin. */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_add_grad_f16(tt_f16 *dst, const tt_f16 *src, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) dst[i] = tt_f2h(tt_h2f(dst[i]) + tt_h2f(src[i]));
}

void tt_add_grad_bcast_f16(const tt_f16 *grad_y, const tt_bcast *bc, float sign, int32_t accumulate,
                           tt_f16 *grad_x)
{
    /* along each output axis the operand either has it (stride != 0: walked outside) or
     * broadcasts along it (summed inside) */
    const int32_t kh = bc->a_sh ? bc->h : 1, kw = bc->a_sw ? bc->w : 1, kc = bc->a_sc ? bc->c : 1;
    const int32_t rh = bc->a_sh ? 1 : bc->h, rw = bc->a_sw ? 1 : bc->w, rc = bc->a_sc ? 1 : bc->c;
    int32_t i, j, k, ri, rj, rk;
    for (i = 0; i < kh; ++i) {
        for (j = 0; j < kw; ++j) {
            for (k = 0; k < kc; ++k) {
                float sum = 0.0f;
                int32_t at;
                for (ri = 0; ri < rh; ++ri) {
                    const int32_t y = bc->a_sh ? i : ri;
                    for (rj = 0; rj < rw; ++rj) {
                        const int32_t x = bc->a_sw ? j : rj;
                        for (rk = 0; rk < rc; ++rk) {
                            const int32_t c = bc->a_sc ? k : rk;
                            sum += tt_h2f(grad_y[(y * bc->w + x) * bc->c + c]);
                        }
                    }
                }
                sum = sign * sum;
                at = i * bc->a_sh + j * bc->a_sw + k * bc->a_sc;
                grad_x[at] = tt_f2h(accumulate ? tt_h2f(grad_x[at]) + sum : sum);
            }
        }
    }
}
