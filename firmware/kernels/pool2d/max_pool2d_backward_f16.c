/* Half-precision max pooling backward (portable; windows that do not overlap, stride >=
 * kernel, so each input receives at most one gradient): the argmax of each window (the
 * first in row-major order on ties) receives the output gradient, the rest 0. */
#include "tt_train_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

void tt_max_pool2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *x, const tt_f16 *grad_y,
                                  int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw;
    int32_t oh, ow, c, ih, iw, i;
    if (!accumulate) {
        for (i = 0; i < in->h * in->w * in->c; ++i) grad_x[i] = 0;
    }
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            for (c = 0; c < out->c; ++c) {
                int32_t best = -1;
                float m = 0.0f;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw) {
                        const int32_t idx = (ih * in->w + iw) * in->c + c;
                        const float v = tt_h2f(x[idx]);
                        if (best < 0 || v > m) {
                            m = v;
                            best = idx;
                        }
                    }
                }
                if (best >= 0) {
                    const float d = tt_h2f(grad_y[(oh * out->w + ow) * out->c + c]);
                    grad_x[best] = tt_f2h(accumulate ? tt_h2f(grad_x[best]) + d : d);
                }
            }
        }
    }
}
