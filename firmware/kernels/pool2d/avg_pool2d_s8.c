/* int8 average pooling, TFLite reference integer_ops::AveragePool: the mean of the
 * taps inside the input (padding is not counted), rounded half away from zero.
 * Input and output share their quantization. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"
#include "tt_window.h"

void tt_avg_pool2d_s8(const int8_t *x, const tt_dims *in, int32_t kh, int32_t kw,
                      const tt_geom *g, int32_t act_min, int32_t act_max,
                      int8_t *y, const tt_dims *out)
{
    const int32_t ch = in->c;
    int32_t oy, ox, c, iy, ix;
    for (oy = 0; oy < out->h; oy++) {
        const tt_window rows = tt_window_clip(oy, g->stride_h, g->pad_top, kh, in->h);
        for (ox = 0; ox < out->w; ox++) {
            const tt_window cols = tt_window_clip(ox, g->stride_w, g->pad_left, kw, in->w);
            const int32_t count = (rows.hi - rows.lo) * (cols.hi - cols.lo);
            for (c = 0; c < ch; c++) {
                int32_t acc = 0;
                for (iy = rows.lo; iy < rows.hi; iy++)
                    for (ix = cols.lo; ix < cols.hi; ix++)
                        acc += x[((size_t)iy * in->w + ix) * ch + c];
                if (count > 0)   /* C division truncates, as TFLite's */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                y[((size_t)oy * out->w + ox) * ch + c] = (int8_t)tt_clamp_i32(acc, act_min, act_max);
            }
        }
    }
}
