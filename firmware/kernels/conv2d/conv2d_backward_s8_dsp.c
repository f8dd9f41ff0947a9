/* conv2d input gradient of int8 graphs for cores without vector floats (Cortex-M4/M7 and
 * the host): tt_conv2d_grad_input_s8's result, float for float (declared in
 * tt_kernels_simd.h).
 *
 * Why the floats are the same: for one output pixel the reference adds, into each input
 * gradient element its taps reach, d_o * (float)w[o][tap][i] over the output channels o in
 * ascending order (skipping o where grad_y is 0), one tap per element (distinct taps of a
 * pixel reach distinct input pixels). Here the channel loop runs inside the element loop
 * instead: each element is loaded once, takes the same products in the same order, and is
 * stored once, so every sum rounds exactly as the reference's does. What changes is the
 * cost around the products: the reference loads and stores the element per MAC and
 * rescales d per tap; here the pixel's nonzero d * scale are computed once, into a
 * stack list of TT_GI_CHUNK channels at a time (ascending, so the order holds across
 * chunks), and eight elements stay in float registers over the whole channel list. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"

#define TT_GI_CHUNK 64

void tt_conv2d_grad_input_s8_dsp(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                 const tt_weight_quant *wq, int32_t accumulate, float *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, cout = out->c;
    const int32_t o_stride = kh * kw * cin;      /* bytes between output channels' weights */
    float dv[TT_GI_CHUNK];
    const int8_t *wo[TT_GI_CHUNK];
    int32_t oh, ow, ky, kx, o0, o, n, j, i;
    tt_zero_unless_f32(grad_x, in->h * in->w * cin, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float *gy = grad_y + (oh * out->w + ow) * cout;
            for (o0 = 0; o0 < cout; o0 += TT_GI_CHUNK) {
                const int32_t o1 = cout - o0 < TT_GI_CHUNK ? cout : o0 + TT_GI_CHUNK;
                n = 0;
                for (o = o0; o < o1; ++o) {
                    const float d = gy[o];
                    if (d == 0.0f) continue;
                    dv[n] = d * wq->scale[wq->per_channel ? o : 0];
                    wo[n] = w + o * o_stride;
                    n++;
                }
                if (n == 0) continue;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        const int32_t tap = (ky * kw + kx) * cin;
                        float *gx;
                        if (iw < 0 || iw >= in->w) continue;
                        gx = grad_x + (ih * in->w + iw) * cin;
                        for (i = 0; i + 8 <= cin; i += 8) {
                            float a0 = gx[i], a1 = gx[i + 1], a2 = gx[i + 2], a3 = gx[i + 3];
                            float a4 = gx[i + 4], a5 = gx[i + 5], a6 = gx[i + 6], a7 = gx[i + 7];
                            for (j = 0; j < n; ++j) {
                                const int8_t *wp = wo[j] + tap + i;
                                const int32_t lo = tt_load_s8x4(wp), hi = tt_load_s8x4(wp + 4);
                                const float d = dv[j];
                                a0 += d * (float)(int8_t)lo;
                                a1 += d * (float)(int8_t)(lo >> 8);
                                a2 += d * (float)(int8_t)(lo >> 16);
                                a3 += d * (float)(lo >> 24);
                                a4 += d * (float)(int8_t)hi;
                                a5 += d * (float)(int8_t)(hi >> 8);
                                a6 += d * (float)(int8_t)(hi >> 16);
                                a7 += d * (float)(hi >> 24);
                            }
                            gx[i] = a0; gx[i + 1] = a1; gx[i + 2] = a2; gx[i + 3] = a3;
                            gx[i + 4] = a4; gx[i + 5] = a5; gx[i + 6] = a6; gx[i + 7] = a7;
                        }
                        for (; i < cin; ++i) {
                            float a = gx[i];
                            for (j = 0; j < n; ++j) a += dv[j] * (float)wo[j][tap + i];
                            gx[i] = a;
                        }
                    }
                }
            }
        }
    }
}
