/* Half-precision pad backward (portable): the output gradient without the padding, stored as
 * is, or as half(old + g) when accumulating (one rounding). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

void tt_pad_grad_input_f16(const tt_dims *in, const tt_dims *out, int32_t pad_top,
                           int32_t pad_left, const tt_f16 *grad_y, int32_t accumulate,
                           tt_f16 *grad_x)
{
    int32_t h, w, c;
    for (h = 0; h < in->h; ++h) {
        for (w = 0; w < in->w; ++w) {
            const tt_f16 *gy = grad_y + ((h + pad_top) * out->w + (w + pad_left)) * out->c;
            tt_f16 *gx = grad_x + (h * in->w + w) * in->c;
            for (c = 0; c < in->c; ++c) gx[c] = accumulate ? tt_f2h(tt_h2f(gx[c]) + tt_h2f(gy[c])) : gy[c];
        }
    }
}
