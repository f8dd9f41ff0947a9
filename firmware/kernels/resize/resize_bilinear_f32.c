/* Float32 bilinear resize, LiteRT's reference ResizeBilinear in its order of operations.
 * Per axis, index[0..n) / index[n..2n) are the lower / upper source indices and frac the
 * float (source coordinate - lower) (tables from tinytrain.ops.resize). */
#include "tt_kernels.h"

void tt_resize_bilinear_f32(const float *x, const tt_dims *in,
                            const int32_t *row_index, const float *row_frac,
                            const int32_t *col_index, const float *col_frac,
                            float *y, const tt_dims *out)
{
    const int32_t c = in->c;
    int32_t oy, ox, ch;
    for (oy = 0; oy < out->h; ++oy) {
        const float dy = row_frac[oy];
        const float *r0 = x + (size_t)row_index[oy] * in->w * c;
        const float *r1 = x + (size_t)row_index[out->h + oy] * in->w * c;
        for (ox = 0; ox < out->w; ++ox) {
            const float dx = col_frac[ox];
            const int32_t c0 = col_index[ox] * c, c1 = col_index[out->w + ox] * c;
            float *yp = y + ((size_t)oy * out->w + ox) * c;
            for (ch = 0; ch < c; ++ch)
                yp[ch] = r0[c0 + ch] * (1.0f - dy) * (1.0f - dx) + r1[c0 + ch] * dy * (1.0f - dx)
                       + r0[c1 + ch] * (1.0f - dy) * dx + r1[c1 + ch] * dy * dx;
        }
    }
}
