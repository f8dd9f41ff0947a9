/* Float32 average pooling: the mean over the window's in-bounds elements (padding is
 * not counted, as TFLite and TensorFlow do), fused activation. */
#include "tt_kernels.h"
#include "tt_float_util.h"
#include "tt_window.h"

void tt_avg_pool2d_f32(const float *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, float *y, const tt_dims *out)
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
                    for (iw = cols.lo; iw < cols.hi; ++iw) sum += x[(ih * in->w + iw) * in->c + c];
                }
                y[(oh * out->w + ow) * out->c + c] = tt_act_f32(sum / count, act);
            }
        }
    }
}
