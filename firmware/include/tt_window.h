/* Pooling window geometry, shared by the pooling kernels (forward and backward):
 * which input rows (or columns) the window of one output position covers, clipped
 * to the input so that padding taps are never read. Header only, static inline. */
#ifndef TT_WINDOW_H
#define TT_WINDOW_H

#include <stdint.h>

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

#endif
