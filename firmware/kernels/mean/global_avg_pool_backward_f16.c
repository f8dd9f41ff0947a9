/* Half-precision global average pooling backward (portable): v = grad_y[c] / (H * W) in
 * float, stored to every pixel of channel c as half(v), or half(old + v) when accumulating. */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_global_avg_pool_grad_input_f16(const tt_dims *in, const tt_f16 *grad_y,
                                       int32_t accumulate, tt_f16 *grad_x)
{
    const int32_t pixels = in->h * in->w;
    int32_t p, c;
    for (p = 0; p < pixels; ++p) {
        tt_f16 *gx = grad_x + p * in->c;
        for (c = 0; c < in->c; ++c) {
            const float v = tt_h2f(grad_y[c]) / (float)pixels;
            gx[c] = tt_f2h(accumulate ? tt_h2f(gx[c]) + v : v);
        }
    }
}
