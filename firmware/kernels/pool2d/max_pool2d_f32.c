/* Float32 max pooling over the window's in-bounds elements, fused activation. The window
 * walk is outside the channel loop: each channel still sees its elements in row-major order
 * (`v > m` keeps the first of equal values and skips NaN, as before), but the window is
 * clipped once per output pixel, not once per channel, and the channels are contiguous. */
#include "tt_kernels.h"
#include "tt_float_util.h"
#include "tt_window.h"

void tt_max_pool2d_f32(const float *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, float *y, const tt_dims *out)
{
    const int32_t ch = out->c;
    int32_t oh, ow, c, ih, iw;
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            float *yp = y + (oh * out->w + ow) * ch;
            for (c = 0; c < ch; ++c) yp[c] = -3.402823466e38f;
            for (ih = rows.lo; ih < rows.hi; ++ih) {
                for (iw = cols.lo; iw < cols.hi; ++iw) {
                    const float *xp = x + (ih * in->w + iw) * in->c;
                    for (c = 0; c < ch; ++c) {
                        if (xp[c] > yp[c]) yp[c] = xp[c];
                    }
                }
            }
            for (c = 0; c < ch; ++c) yp[c] = tt_act_f32(yp[c], act);
        }
    }
}
