/* Half-precision average pooling (portable): per output the float sum of the window's
 * in-bounds elements (rows, then columns, in order), divided by their count in float, the
 * activation, one rounding to half (tt_avg_pool2d_f32's order; tinytrain/ops/f16.py
 * avg_pool2d is its twin). */
#include "tt_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

void tt_avg_pool2d_f16(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    int32_t oh, ow, c, ih, iw;
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            const float count = (float)((rows.hi - rows.lo) * (cols.hi - cols.lo));
            for (c = 0; c < out->c; ++c) {
                float sum = 0.0f;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw) sum += tt_h2f(x[(ih * in->w + iw) * in->c + c]);
                }
                y[(oh * out->w + ow) * out->c + c] = tt_f2h(tt_act_f16(sum / count, act));
            }
        }
    }
}
