/* The walk the conv2d input-gradient variants share (conv2d_backward_s8_dsp.c, _mve.c):
 * tt_conv2d_grad_input_s8's floats with the output channel loop inside the element loop.
 * Header only.
 *
 * Why the floats are the same: for one output pixel the reference adds, into each input
 * gradient element its taps reach, d_o * (float)w[o][tap][i] over the output channels o in
 * ascending order (skipping o where grad_y is 0), one tap per element (distinct taps of a
 * pixel reach distinct input pixels). Here each element is loaded once, takes the same
 * products in the same order, and is stored once, so every sum rounds exactly as the
 * reference's does. The pixel's nonzero d * scale are computed once, into a list of
 * TT_GI_CHUNK channels at a time (ascending, so the order holds across chunks); the
 * variant's `row` function adds the list's products into one tap's row of cin elements,
 * keeping a group of elements in registers over the whole list. */
#ifndef TT_GRAD_INPUT_WALK_H
#define TT_GRAD_INPUT_WALK_H

#include "tt_train_kernels.h"
#include "tt_float_util.h"

#define TT_GI_CHUNK 64

typedef struct {
    float d[TT_GI_CHUNK];             /* grad_y[o] * scale[o], nonzero, o ascending */
    const int8_t *w[TT_GI_CHUNK];     /* output channel o's weights (kh, kw, cin) */
    int32_t n;
} tt_gi_list;

/* The walk and the rows are inlined into each other (a call per tap would cost ~2%). */
#if defined(__GNUC__)
#define TT_GI_INLINE static inline __attribute__((always_inline))
#else
#define TT_GI_INLINE static inline
#endif

/* gx[i] += sum over the list (in order) of d * (float)w[tap + i], i < cin. */
typedef void (*tt_gi_row_fn)(float *gx, int32_t cin, const tt_gi_list *l, int32_t tap);

/* The whole input gradient through `row` (inlined where the caller passes its own). */
TT_GI_INLINE void tt_conv2d_grad_input_walk(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                             const tt_weight_quant *wq, int32_t accumulate, float *grad_x,
                                             tt_gi_row_fn row)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, cout = out->c;
    const int32_t o_stride = kh * kw * cin;      /* bytes between output channels' weights */
    tt_gi_list l;
    int32_t oh, ow, ky, kx, o0, o;
    tt_zero_unless_f32(grad_x, in->h * in->w * cin, accumulate);
    for (oh = 0; oh < out->h; ++oh) {
        for (ow = 0; ow < out->w; ++ow) {
            const float *gy = grad_y + (oh * out->w + ow) * cout;
            for (o0 = 0; o0 < cout; o0 += TT_GI_CHUNK) {
                const int32_t o1 = cout - o0 < TT_GI_CHUNK ? cout : o0 + TT_GI_CHUNK;
                l.n = 0;
                for (o = o0; o < o1; ++o) {
                    const float d = gy[o];
                    if (d == 0.0f) continue;
                    l.d[l.n] = d * wq->scale[wq->per_channel ? o : 0];
                    l.w[l.n] = w + o * o_stride;
                    l.n++;
                }
                if (l.n == 0) continue;
                for (ky = 0; ky < kh; ++ky) {
                    const int32_t ih = oh * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (ih < 0 || ih >= in->h) continue;
                    for (kx = 0; kx < kw; ++kx) {
                        const int32_t iw = ow * g->stride_w - g->pad_left + kx * g->dil_w;
                        if (iw < 0 || iw >= in->w) continue;
                        row(grad_x + (ih * in->w + iw) * cin, cin, &l, (ky * kw + kx) * cin);
                    }
                }
            }
        }
    }
}

#endif
