/* Average pooling backward: each output gradient is spread evenly over the window's
 * in-bounds input elements (the count the forward divides by). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_window.h"

void tt_avg_pool2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y,
                                  int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw;
    int32_t oh, ow, c, ih, iw;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            const float count = (float)((rows.hi - rows.lo) * (cols.hi - cols.lo));
            const float *gy = grad_y + (oh * out->w + ow) * out->c;
            for (ih = rows.lo; ih < rows.hi; ++ih) {
                for (iw = cols.lo; iw < cols.hi; ++iw) {
                    float *gx = grad_x + (ih * in->w + iw) * in->c;
                    for (c = 0; c < out->c; ++c) gx[c] += gy[c] / count;
                }
            }
        }
    }
}
