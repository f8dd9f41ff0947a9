/* Window geometry: which input rows (or columns) the window of one output position covers,
 * clipped to the input so that padding taps are never read (the pooling kernels), and the
 * walk over a convolution's (output pixel, kernel tap) pairs that the conv2d / depthwise
 * backward kernels share. Header only, static inline. */
#ifndef TT_WINDOW_H
#define TT_WINDOW_H

#include <stdint.h>
#include "tt_types.h"

/* Input indices [lo, hi) along one axis. A window lying wholly in the padding gives
 * hi <= lo: the callers' loops then run zero times. */
typedef struct {
    int32_t lo, hi;
} tt_window;

/* The window of output position `out_pos` along one axis: it starts at
 * out_pos * stride - pad_before, spans k inputs, and is clipped to [0, in_size). */
static inline tt_window tt_window_clip(int32_t out_pos, int32_t stride, int32_t pad_before,
                                       int32_t k, int32_t in_size)
{
    const int32_t origin = out_pos * stride - pad_before;
    tt_window w;
    w.lo = origin < 0 ? 0 : origin;
    w.hi = origin + k > in_size ? in_size : origin + k;
    return w;
}

/* The inverse: the output positions [lo, hi) along one axis whose window [o * stride - pad,
 * + k) holds input i (a pooling gradient gathered per input), clipped to [0, n_out). */
static inline tt_window tt_window_sources(int32_t i, int32_t stride, int32_t pad, int32_t k, int32_t n_out)
{
    tt_window r;
    const int32_t num = i + pad - k + 1;          /* o * stride >= num */
    r.lo = num <= 0 ? 0 : (num + stride - 1) / stride;
    r.hi = (i + pad) / stride + 1;                /* o * stride <= i + pad */
    if (r.hi > n_out) r.hi = n_out;
    if (r.lo > r.hi) r.lo = r.hi;
    return r;
}

/* [k0, k1): the taps k of a window starting at p0 (tap k at p0 + k * dil) that fall inside
 * [0, n); found once per output pixel instead of a bounds check per tap. */
static inline void tt_window_taps(int32_t p0, int32_t k, int32_t dil, int32_t n, int32_t *k0, int32_t *k1)
{
    int32_t a = 0, b = k;
    while (a < k && p0 + a * dil < 0) a++;
    while (b > a && p0 + (b - 1) * dil >= n) b--;
    *k0 = a;
    *k1 = b;
}

/* ---- the walk over a convolution's window ---------------------------------------------------
 * Every output pixel in memory order, and for each the kernel taps that fall inside the
 * input, rows then columns ascending: the order the reference kernels always took (taps in
 * the padding skipped), so every float sum they make keeps its order. The taps inside are
 * found once per pixel (tt_window_taps) instead of a bounds check per tap.
 *
 *     tt_conv_walk it;
 *     tt_conv_walk_start(&it, in, out, kh, kw, g);
 *     while (tt_conv_walk_next_pixel(&it)) {      // it.out_pixel = oh * out->w + ow
 *         while (tt_conv_walk_next_tap(&it)) {    // it.tap = ky * kw + kx,
 *             ...                                 // it.in_pixel = ih * in->w + iw
 *         }
 *     }
 * After next_pixel, [ky0, ky1) x [kx0, kx1) are the pixel's taps inside the input and tap
 * (ky, kx) reads input row ih0 + ky * dil_h, column iw0 + kx * dil_w (for a caller that walks
 * them itself). */
typedef struct {
    const tt_dims *in, *out;
    int32_t kh, kw;
    const tt_geom *g;
    int32_t oh, ow, out_pixel;        /* the output pixel */
    int32_t ih0, iw0;                 /* the input row / column of its tap (0, 0) */
    int32_t ky0, ky1, kx0, kx1;       /* its taps inside the input */
    int32_t ky, kx, tap, in_pixel;    /* the current tap */
} tt_conv_walk;

static inline void tt_conv_walk_start(tt_conv_walk *it, const tt_dims *in, const tt_dims *out, int32_t kh,
                                      int32_t kw, const tt_geom *g)
{
    it->in = in;
    it->out = out;
    it->kh = kh;
    it->kw = kw;
    it->g = g;
    it->oh = 0;
    it->ow = -1;
    it->out_pixel = -1;
    it->ih0 = it->iw0 = it->ky0 = it->ky1 = it->kx0 = it->kx1 = 0;   /* set by next_pixel */
}

/* The next output pixel (0 when there is none left). */
static inline int32_t tt_conv_walk_next_pixel(tt_conv_walk *it)
{
    const tt_geom *g = it->g;
    if (++it->ow >= it->out->w) {
        it->ow = 0;
        if (++it->oh >= it->out->h || it->out->w <= 0) return 0;
    }
    if (it->oh >= it->out->h) return 0;
    it->out_pixel++;
    if (it->ow == 0) {            /* a new output row: the kernel rows inside the input */
        it->ih0 = it->oh * g->stride_h - g->pad_top;
        tt_window_taps(it->ih0, it->kh, g->dil_h, it->in->h, &it->ky0, &it->ky1);
    }
    it->iw0 = it->ow * g->stride_w - g->pad_left;
    tt_window_taps(it->iw0, it->kw, g->dil_w, it->in->w, &it->kx0, &it->kx1);
    it->ky = it->ky0;
    it->kx = it->kx0 - 1;
    return 1;
}

/* The pixel's next tap inside the input (0 when there is none left). */
static inline int32_t tt_conv_walk_next_tap(tt_conv_walk *it)
{
    if (++it->kx >= it->kx1) {
        it->kx = it->kx0;
        ++it->ky;
    }
    if (it->ky >= it->ky1 || it->kx0 >= it->kx1) return 0;
    it->tap = it->ky * it->kw + it->kx;
    it->in_pixel = (it->ih0 + it->ky * it->g->dil_h) * it->in->w + it->iw0 + it->kx * it->g->dil_w;
    return 1;
}

#endif
