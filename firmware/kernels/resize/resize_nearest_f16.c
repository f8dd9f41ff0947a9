/* Half-precision nearest-neighbour resize (portable): output pixel (oy, ox) copies input pixel
 * (rows[oy], cols[ox]) (exact; tables from tinytrain.ops.resize). */
#include <string.h>
#include "tt_kernels.h"

void tt_resize_nearest_f16(const tt_f16 *x, const tt_dims *in, const int32_t *rows, const int32_t *cols,
                           tt_f16 *y, const tt_dims *out)
{
    const size_t c = (size_t)in->c;
    int32_t oy, ox;
    for (oy = 0; oy < out->h; ++oy) {
        const tt_f16 *xr = x + (size_t)rows[oy] * in->w * c;
        tt_f16 *yr = y + (size_t)oy * out->w * c;
        for (ox = 0; ox < out->w; ++ox) memcpy(yr + ox * c, xr + (size_t)cols[ox] * c, c * sizeof(tt_f16));
    }
}
