/* Transposed convolution backward w.r.t. its input (its weights stay frozen): input pixel
 * (iy, ix) reached output (iy*stride - pad + ky, ix*stride - pad + kx), so
 * grad_x[iy][ix][i] = sum over those taps and output channels o of grad_y * w[o][ky][kx][i]
 * (a strided correlation of grad_y with w). The int8 form dequantizes w (w_scale per output
 * channel when per_channel, else w_scale[0]). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"

static void grad_pixel(const float *grad_y, const tt_dims *out, int32_t iy, int32_t ix,
                       const float *w, const int8_t *wq, const float *w_scale, int32_t per_channel,
                       int32_t kh, int32_t kw, const tt_geom *g, float *gx, int32_t cin)
{
    int32_t ky, kx, o, i;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t oy = iy * g->stride_h - g->pad_top + ky;
        if (oy < 0 || oy >= out->h) continue;
        for (kx = 0; kx < kw; ++kx) {
            const int32_t ox = ix * g->stride_w - g->pad_left + kx;
            const float *gy;
            if (ox < 0 || ox >= out->w) continue;
            gy = grad_y + (oy * out->w + ox) * out->c;
            for (o = 0; o < out->c; ++o) {
                const size_t row = ((size_t)(o * kh + ky) * kw + kx) * cin;
                float d = gy[o];
                if (d == 0.0f) continue;
                if (wq) {
                    d = d * w_scale[per_channel ? o : 0];
                    for (i = 0; i < cin; ++i) gx[i] += d * (float)wq[row + i];
                } else {
                    for (i = 0; i < cin; ++i) gx[i] += d * w[row + i];
                }
            }
        }
    }
}

void tt_transpose_conv_grad_input_f32(const float *grad_y, const tt_dims *out,
                                      const float *w, int32_t kh, int32_t kw, const tt_geom *g,
                                      int32_t accumulate, float *grad_x, const tt_dims *in)
{
    int32_t iy, ix;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (iy = 0; iy < in->h; ++iy)
        for (ix = 0; ix < in->w; ++ix)
            grad_pixel(grad_y, out, iy, ix, w, 0, 0, 0, kh, kw, g, grad_x + (iy * in->w + ix) * in->c, in->c);
}

void tt_transpose_conv_grad_input_s8(const float *grad_y, const tt_dims *out,
                                     const int8_t *w, const tt_weight_quant *wq,
                                     int32_t kh, int32_t kw, const tt_geom *g,
                                     int32_t accumulate, float *grad_x, const tt_dims *in)
{
    int32_t iy, ix;
    tt_zero_unless_f32(grad_x, in->h * in->w * in->c, accumulate);
    for (iy = 0; iy < in->h; ++iy)
        for (ix = 0; ix < in->w; ++ix)
            grad_pixel(grad_y, out, iy, ix, 0, w, wq->scale, wq->per_channel, kh, kw, g,
                       grad_x + (iy * in->w + ix) * in->c, in->c);
}
