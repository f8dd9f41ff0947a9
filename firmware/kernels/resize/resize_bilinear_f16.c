/* Half-precision bilinear resize (portable): tt_resize_bilinear_f32's float32 arithmetic, in
 * its order, on the widened halves; each output rounded to half once. */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_resize_bilinear_f16(const tt_f16 *x, const tt_dims *in,
                            const int32_t *row_index, const float *row_frac,
                            const int32_t *col_index, const float *col_frac,
                            tt_f16 *y, const tt_dims *out)
{
    const int32_t c = in->c;
    int32_t oy, ox, ch;
    for (oy = 0; oy < out->h; ++oy) {
        const float dy = row_frac[oy];
        const tt_f16 *r0 = x + (size_t)row_index[oy] * in->w * c;
        const tt_f16 *r1 = x + (size_t)row_index[out->h + oy] * in->w * c;
        for (ox = 0; ox < out->w; ++ox) {
            const float dx = col_frac[ox];
            const int32_t c0 = col_index[ox] * c, c1 = col_index[out->w + ox] * c;
            tt_f16 *yp = y + ((size_t)oy * out->w + ox) * c;
            for (ch = 0; ch < c; ++ch)
                yp[ch] = tt_f2h(tt_h2f(r0[c0 + ch]) * (1.0f - dy) * (1.0f - dx)
                                + tt_h2f(r1[c0 + ch]) * dy * (1.0f - dx)
                                + tt_h2f(r0[c1 + ch]) * (1.0f - dy) * dx
                                + tt_h2f(r1[c1 + ch]) * dy * dx);
        }
    }
}
