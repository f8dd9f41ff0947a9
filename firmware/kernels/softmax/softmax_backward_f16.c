/* Half-precision softmax backward from its saved (half) output (portable): per row
 * dot = sum of grad_y[i] * y[i] in float in order, then v = y[i] * (grad_y[i] - dot) in
 * float, stored as half(v) or half(old + v) (tt_softmax_grad_input_f32's order). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_softmax_grad_input_f16(int32_t rows, int32_t depth, const tt_f16 *y, const tt_f16 *grad_y,
                               int32_t accumulate, tt_f16 *grad_x)
{
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        const tt_f16 *yr = y + r * depth, *gr = grad_y + r * depth;
        tt_f16 *gx = grad_x + r * depth;
        float dot = 0.0f;
        for (i = 0; i < depth; ++i) dot += tt_h2f(gr[i]) * tt_h2f(yr[i]);
        for (i = 0; i < depth; ++i) {
            const float v = tt_h2f(yr[i]) * (tt_h2f(gr[i]) - dot);
            gx[i] = tt_f2h(accumulate ? tt_h2f(gx[i]) + v : v);
        }
    }
}
