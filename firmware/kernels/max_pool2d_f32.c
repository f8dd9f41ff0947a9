/* Float32 max pooling over the window's in-bounds elements, fused activation. */
#include "tt_kernels.h"
#include "tt_float_util.h"

void tt_max_pool2d_f32(const float *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, float *y, const tt_dims *out)
{
    int32_t oh, ow, c, ih, iw;
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const int32_t ih0 = oh * g->stride_h - g->pad_top;
            const int32_t iw0 = ow * g->stride_w - g->pad_left;
            const int32_t h_lo = ih0 < 0 ? 0 : ih0, h_hi = ih0 + kh > in->h ? in->h : ih0 + kh;
            const int32_t w_lo = iw0 < 0 ? 0 : iw0, w_hi = iw0 + kw > in->w ? in->w : iw0 + kw;
            for (c = 0; c < out->c; ++c) {
                float m = -3.402823466e38f;
                for (ih = h_lo; ih < h_hi; ++ih) {
                    for (iw = w_lo; iw < w_hi; ++iw) {
                        const float v = x[(ih * in->w + iw) * in->c + c];
                        if (v > m) m = v;
                    }
                }
                y[(oh * out->w + ow) * out->c + c] = tt_act_f32(m, act);
            }
        }
    }
}
