/* Half-precision zero padding (portable): x (in) placed at (pad_top, pad_left) inside y (out). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_pad_f16(const tt_f16 *x, const tt_dims *in, int32_t pad_top, int32_t pad_left,
                tt_f16 *y, const tt_dims *out)
{
    int32_t h, w, c;
    for (h = 0; h < out->h; ++h) {
        for (w = 0; w < out->w; ++w) {
            const int32_t ih = h - pad_top, iw = w - pad_left;
            tt_f16 *yp = y + (h * out->w + w) * out->c;
            if (ih < 0 || ih >= in->h || iw < 0 || iw >= in->w) {
                for (c = 0; c < out->c; ++c) yp[c] = 0;
            } else {
                const tt_f16 *xp = x + (ih * in->w + iw) * in->c;
                for (c = 0; c < out->c; ++c) yp[c] = xp[c];
            }
        }
    }
}
