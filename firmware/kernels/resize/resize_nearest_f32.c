/* Nearest-neighbour resize of float32 HWC: output pixel (oy, ox) is input pixel
 * (rows[oy], cols[ox]) (tables from tinytrain.ops.resize). */
#include <string.h>
#include "tt_kernels.h"

void tt_resize_nearest_f32(const float *x, const tt_dims *in, const int32_t *rows, const int32_t *cols,
                           float *y, const tt_dims *out)
{
    const size_t c = (size_t)in->c;
    int32_t oy, ox;
    for (oy = 0; oy < out->h; ++oy) {
        const float *xr = x + (size_t)rows[oy] * in->w * c;
        float *yr = y + (size_t)oy * out->w * c;
        for (ox = 0; ox < out->w; ++ox) memcpy(yr + ox * c, xr + (size_t)cols[ox] * c, c * sizeof(float));
    }
}
