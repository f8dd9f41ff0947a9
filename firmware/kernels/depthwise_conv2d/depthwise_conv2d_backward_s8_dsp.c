/* depthwise conv2d input gradient of int8 graphs for cores without vector floats
 * (Cortex-M4/M7, the host): tt_depthwise_conv2d_grad_input_s8's floats, bit for bit
 * (declared in tt_kernels_simd.h).
 *
 * Each input gradient element (ih, iw, c) receives (grad_y[oh, ow, c] * scale_c) * w[tap, c]
 * from the (oh, ow, ky, kx) reaching it, in that order, and from nothing else: channels never
 * mix. So the channels may be taken a group of eight at a time, each group walking the
 * whole window in the reference's order: the element sees the same sums. Per group the
 * weights are converted to float once (not once per output pixel and tap) and d = grad_y *
 * scale once per pixel (not per tap); the products are the reference's (d is rounded to a
 * float before it multiplies the weight there too). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"
#include "tt_window.h"

void tt_depthwise_conv2d_grad_input_s8_dsp(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                           const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, ch = out->c, taps = kh * kw;
    const int32_t sh = g->stride_h, sw = g->stride_w, pt = g->pad_top, pl = g->pad_left;
    const int32_t dh = g->dil_h, dw = g->dil_w, in_h = in->h, in_w = in->w, in_c = in->c;
    float wf[8 * TT_DW_GI_MAX_TAPS], sc[8], d[8];
    int32_t c0, n, j, t, oh, ow, ky, kx;
    if (taps > TT_DW_GI_MAX_TAPS) {
        tt_depthwise_conv2d_grad_input_s8(s, grad_y, w, wq, accumulate, grad_x);
        return;
    }
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (c0 = 0; c0 < ch; c0 += 8) {
        n = ch - c0 < 8 ? ch - c0 : 8;
        for (t = 0; t < taps; ++t)
            for (j = 0; j < n; ++j) wf[t * 8 + j] = (float)w[t * ch + c0 + j];
        for (j = 0; j < n; ++j) sc[j] = wq->scale[wq->per_channel ? c0 + j : 0];
        for (oh = 0; oh < out->h; ++oh) {
            const int32_t ih0 = oh * sh - pt;
            int32_t ky0, ky1;
            tt_window_taps(ih0, kh, dh, in_h, &ky0, &ky1);
            for (ow = 0; ow < out->w; ++ow) {
                const float *gy = grad_y + (oh * out->w + ow) * ch + c0;
                const int32_t iw0 = ow * sw - pl;
                int32_t kx0, kx1;
                for (j = 0; j < n; ++j) d[j] = gy[j] * sc[j];
                tt_window_taps(iw0, kw, dw, in_w, &kx0, &kx1);
                for (ky = ky0; ky < ky1; ++ky) {
                    float *grow = grad_x + (ih0 + ky * dh) * in_w * in_c + c0;
                    const float *wrow = wf + ky * kw * 8;
                    for (kx = kx0; kx < kx1; ++kx) {
                        float *gx = grow + (iw0 + kx * dw) * in_c;
                        const float *wt = wrow + kx * 8;
                        if (n == 8) {
                            gx[0] += d[0] * wt[0]; gx[1] += d[1] * wt[1];
                            gx[2] += d[2] * wt[2]; gx[3] += d[3] * wt[3];
                            gx[4] += d[4] * wt[4]; gx[5] += d[5] * wt[5];
                            gx[6] += d[6] * wt[6]; gx[7] += d[7] * wt[7];
                        } else {
                            for (j = 0; j < n; ++j) gx[j] += d[j] * wt[j];
                        }
                    }
                }
            }
        }
    }
}
