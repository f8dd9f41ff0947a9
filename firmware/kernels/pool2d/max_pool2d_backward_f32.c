/* Max pooling backward (Float32 saved input): the argmax of each window is recomputed
 * from x and receives the output gradient (ties: the first in row-major order). The
 * window walk is outside the channel loop (a chunk of TT_POOL_CHUNK channels at a time,
 * their running maxima and argmaxes on the stack): each channel sees its elements in the
 * same order as a per-channel walk, so it picks the same element. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_window.h"

#define TT_POOL_CHUNK 64

void tt_max_pool2d_grad_input_f32(const tt_conv_shape *s, const float *x, const float *grad_y,
                                  int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = out->c;
    float m[TT_POOL_CHUNK];
    int32_t best[TT_POOL_CHUNK];
    int32_t oh, ow, c0, n, c, ih, iw;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            const float *gy = grad_y + (oh * out->w + ow) * ch;
            if (rows.lo >= rows.hi || cols.lo >= cols.hi) continue;    /* an empty window */
            for (c0 = 0; c0 < ch; c0 += TT_POOL_CHUNK) {
                n = ch - c0 < TT_POOL_CHUNK ? ch - c0 : TT_POOL_CHUNK;
                /* the first element is the first best (as `best < 0` made it) */
                {
                    const int32_t first = (rows.lo * in->w + cols.lo) * in->c + c0;
                    for (c = 0; c < n; ++c) {
                        m[c] = x[first + c];
                        best[c] = first + c;
                    }
                }
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = ih == rows.lo ? cols.lo + 1 : cols.lo; iw < cols.hi; ++iw) {
                        const int32_t idx = (ih * in->w + iw) * in->c + c0;
                        const float *xp = x + idx;
                        for (c = 0; c < n; ++c) {
                            if (xp[c] > m[c]) {
                                m[c] = xp[c];
                                best[c] = idx + c;
                            }
                        }
                    }
                }
                for (c = 0; c < n; ++c) grad_x[best[c]] += gy[c0 + c];
            }
        }
    }
}
