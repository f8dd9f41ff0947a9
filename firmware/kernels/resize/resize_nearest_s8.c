/* Nearest-neighbour resize of int8 HWC (TFLite RESIZE_NEAREST_NEIGHBOR, and the TILE pairs of
 * an upsampling): output pixel (oy, ox) is input pixel (rows[oy], cols[ox]), the per-axis
 * source tables tinytrain.ops.resize computes (LiteRT's GetNearestNeighbor). */
#include <string.h>
#include "tt_kernels.h"

void tt_resize_nearest_s8(const int8_t *x, const tt_dims *in, const int32_t *rows, const int32_t *cols,
                          int8_t *y, const tt_dims *out)
{
    const size_t c = (size_t)in->c;
    int32_t oy, ox;
    for (oy = 0; oy < out->h; ++oy) {
        const int8_t *xr = x + (size_t)rows[oy] * in->w * c;
        int8_t *yr = y + (size_t)oy * out->w * c;
        for (ox = 0; ox < out->w; ++ox) memcpy(yr + ox * c, xr + (size_t)cols[ox] * c, c);
    }
}
