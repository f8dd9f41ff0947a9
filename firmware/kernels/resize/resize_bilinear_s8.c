/* int8 bilinear resize, LiteRT's reference ResizeBilinearInteger (what BUILTIN_REF runs for
 * int8). Per axis, index[0..n) is the lower source index, index[n..2n) the upper one, frac
 * the 10-bit source coordinate minus 1024 * lower (negative left of the first pixel centre
 * with half-pixel centres; tables from tinytrain.ops.resize). The four products are summed
 * in 20 fractional bits (|sum| < 2^30: int32 holds it) and rounded half away from zero. */
#include "tt_kernels.h"

void tt_resize_bilinear_s8(const int8_t *x, const tt_dims *in,
                           const int32_t *row_index, const int32_t *row_frac,
                           const int32_t *col_index, const int32_t *col_frac,
                           int8_t *y, const tt_dims *out)
{
    const int32_t c = in->c, one = 1 << 10;
    int32_t oy, ox, ch;
    for (oy = 0; oy < out->h; ++oy) {
        const int32_t fy = row_frac[oy];
        const int8_t *r0 = x + (size_t)row_index[oy] * in->w * c;
        const int8_t *r1 = x + (size_t)row_index[out->h + oy] * in->w * c;
        for (ox = 0; ox < out->w; ++ox) {
            const int32_t fx = col_frac[ox];
            const int32_t c0 = col_index[ox] * c, c1 = col_index[out->w + ox] * c;
            int8_t *yp = y + ((size_t)oy * out->w + ox) * c;
            for (ch = 0; ch < c; ++ch) {
                const int32_t acc = (int32_t)r0[c0 + ch] * (one - fy) * (one - fx)
                                  + (int32_t)r1[c0 + ch] * fy * (one - fx)
                                  + (int32_t)r0[c1 + ch] * (one - fy) * fx
                                  + (int32_t)r1[c1 + ch] * fy * fx;
                yp[ch] = (int8_t)((acc + (acc > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20));
            }
        }
    }
}
