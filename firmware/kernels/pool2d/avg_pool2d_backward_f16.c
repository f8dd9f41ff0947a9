/* Half-precision average pooling backward (portable), in gather form so that each input
 * gradient is rounded to half once: for each input element, the float sum (from 0) of
 * grad_y / count over the outputs whose window holds it, in row-major output order, stored
 * as half(sum) or half(old + sum). The scatter of tt_avg_pool2d_grad_input_f32 adds the same
 * terms to each element in the same order. */
#include "tt_train_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

/* channels per pass: the float sums of one input element's channels, on the stack */
#define TT_AVG_POOL_F16_CHUNK 32

void tt_avg_pool2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *grad_y,
                                  int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    float sum[TT_AVG_POOL_F16_CHUNK];
    int32_t ih, iw, c, c0, n, oh, ow;
    for (ih = 0; ih < in->h; ++ih) {
        const tt_window ohs = tt_window_sources(ih, g->stride_h, g->pad_top, s->kh, out->h);
        for (iw = 0; iw < in->w; ++iw) {
            const tt_window ows = tt_window_sources(iw, g->stride_w, g->pad_left, s->kw, out->w);
            tt_f16 *gx = grad_x + (ih * in->w + iw) * in->c;
            for (c0 = 0; c0 < in->c; c0 += TT_AVG_POOL_F16_CHUNK) {
                n = in->c - c0 < TT_AVG_POOL_F16_CHUNK ? in->c - c0 : TT_AVG_POOL_F16_CHUNK;
                for (c = 0; c < n; ++c) sum[c] = 0.0f;
                for (oh = ohs.lo; oh < ohs.hi; ++oh) {
                    const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, s->kh, in->h);
                    for (ow = ows.lo; ow < ows.hi; ++ow) {
                        const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, s->kw, in->w);
                        const float count = (float)((rows.hi - rows.lo) * (cols.hi - cols.lo));
                        const tt_f16 *gy = grad_y + (oh * out->w + ow) * out->c + c0;
                        for (c = 0; c < n; ++c) sum[c] += tt_h2f(gy[c]) / count;
                    }
                }
                for (c = 0; c < n; ++c)
                    gx[c0 + c] = tt_f2h(accumulate ? tt_h2f(gx[c0 + c]) + sum[c] : sum[c]);
            }
        }
    }
}
