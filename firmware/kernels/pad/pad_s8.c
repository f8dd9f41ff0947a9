/* int8 spatial padding (TFLite PAD): copies x into y at (pad_top, pad_left) and fills
 * the border with pad_value (the zero point). Channels are unchanged. */
#include <string.h>
#include "tt_kernels.h"

void tt_pad_s8(const int8_t *x, const tt_dims *in, int32_t pad_top, int32_t pad_left,
               int8_t pad_value, int8_t *y, const tt_dims *out)
{
    const size_t row_bytes = (size_t)in->w * in->c;
    int32_t oy, iy;
    memset(y, pad_value, (size_t)out->h * out->w * out->c);
    for (iy = 0; iy < in->h; iy++) {
        oy = iy + pad_top;
        if (oy < 0 || oy >= out->h) continue;
        memcpy(y + ((size_t)oy * out->w + pad_left) * out->c, x + (size_t)iy * row_bytes, row_bytes);
    }
}
