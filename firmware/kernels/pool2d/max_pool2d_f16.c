/* Half-precision max pooling (portable): the largest half of each window (compared as
 * floats: exact), then the activation. */
#include "tt_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

void tt_max_pool2d_f16(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    int32_t oh, ow, c, ih, iw;
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            for (c = 0; c < out->c; ++c) {
                float m = 0.0f;
                int32_t first = 1;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw) {
                        const float v = tt_h2f(x[(ih * in->w + iw) * in->c + c]);
                        if (first || v > m) m = v;
                        first = 0;
                    }
                }
                y[(oh * out->w + ow) * out->c + c] = tt_f2h(tt_act_f16(m, act));
            }
        }
    }
}
