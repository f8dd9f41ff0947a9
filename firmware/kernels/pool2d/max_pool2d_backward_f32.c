/* Max pooling backward (Float32 saved input): the argmax of each window is recomputed
 * from x and receives the output gradient (ties: the first in row-major order). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_window.h"

void tt_max_pool2d_grad_input_f32(const tt_conv_shape *s, const float *x, const float *grad_y,
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
            for (c = 0; c < out->c; ++c) {
                int32_t best = -1;
                float m = -3.402823466e38f;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw) {
                        const int32_t idx = (ih * in->w + iw) * in->c + c;
                        if (best < 0 || x[idx] > m) {
                            m = x[idx];
                            best = idx;
                        }
                    }
                }
                if (best >= 0) grad_x[best] += grad_y[(oh * out->w + ow) * out->c + c];
            }
        }
    }
}
