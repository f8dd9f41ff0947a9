/* Helium variant (MVE, Cortex-M55) of tt_avg_pool2d_f16 (avg_pool2d_f16.c), the same bits: per
 * output, the float32 sum of the window's in-bounds halves (rows, then columns, in order),
 * here 8 channels at a time in float32 lanes with the same adds (tt_f16_sum_mve.h: halves
 * widened by integer operations, no VCVTB/VCVTT, no float32 subnormal); then the division by
 * the count (MVE has none: tt_div_count_f32_mve, correctly rounded, for counts up to
 * TT_F16_DIV_MAX; larger windows, and windows wholly in the padding, finish in scalar as the
 * portable kernel), the activation and the rounding to half (tt_f2h's bits) in the lanes. One pass
 * over the input first (8 halves a vector): an inf or NaN sends it to the portable kernel (MVE
 * arithmetic returns the default NaN, the scalar code keeps the payload); without a subnormal
 * the short widening serves. Empty where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_f16_sum_mve.h"

/* one output's channels [0, n), n <= 8: the window sums, then / count, the activation and the
 * rounding to half, in the lanes (1 <= count <= TT_F16_DIV_MAX), or in scalar */
static inline __attribute__((always_inline)) void output(const tt_f16 *win, int32_t nr, int32_t nc,
                                                         int32_t row_stride, int32_t col_stride, int32_t n,
                                                         int32_t act, tt_f16 *yo, const int full, const int exact)
{
    const int32_t count = nr * nc;
    float32x4_t s0, s1;
    tt_window_sums8_f16_mve(win, nr, nc, row_stride, col_stride, n, &s0, &s1, full, exact);
    if (nr > 0 && nc > 0 && count <= TT_F16_DIV_MAX) {
        const float inv = 1.0f / (float)count, neg = -(float)count;
        const uint32x4_t inf16 = vdupq_n_u32(0x7C00u);
        float32x4_t q0 = tt_div_count_f32_mve(s0, inv, neg), q1 = tt_div_count_f32_mve(s1, inv, neg);
        if (act != 0) {         /* tt_act_f16: v < 0 -> +0 (-0 stays), v > 6 -> 6 (no NaN here) */
            q0 = vpselq_f32(vdupq_n_f32(0.0f), q0, vcmpltq_n_f32(q0, 0.0f));
            q1 = vpselq_f32(vdupq_n_f32(0.0f), q1, vcmpltq_n_f32(q1, 0.0f));
            if (act == 2) {
                q0 = vpselq_f32(vdupq_n_f32(6.0f), q0, vcmpgtq_n_f32(q0, 6.0f));
                q1 = vpselq_f32(vdupq_n_f32(6.0f), q1, vcmpgtq_n_f32(q1, 6.0f));
            }
        }
        if (full) {
            vstrhq_u32(yo, tt_narrow_f16_mve(q0, inf16));
            vstrhq_u32(yo + 4, tt_narrow_f16_mve(q1, inf16));
        } else {
            vstrhq_p_u32(yo, tt_narrow_f16_mve(q0, inf16), vctp32q((uint32_t)n));
            vstrhq_p_u32(yo + 4, tt_narrow_f16_mve(q1, inf16), vctp32q((uint32_t)(n > 4 ? n - 4 : 0)));
        }
    } else {                    /* the portable finish (and its 0 / 0 of a window in the padding) */
        float sums[8];
        int32_t l;
        vst1q_f32(sums, s0);
        vst1q_f32(sums + 4, s1);
        for (l = 0; l < n; ++l) yo[l] = tt_f2h(tt_act_f16(sums[l] / (float)count, act));
    }
}

void tt_avg_pool2d_f16_mve(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    const int32_t channels = out->c, rs = in->w * in->c, cs = in->c;
    int32_t oh, ow, c0;
    const int what = tt_scan_f16_mve(x, in->h * in->w * in->c);
    if (what & TT_F16_INF_NAN) {
        tt_avg_pool2d_f16(x, in, kh, kw, g, act, y, out);
        return;
    }
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            const tt_f16 *win = x + (rows.lo * in->w + cols.lo) * in->c;
            tt_f16 *yo = y + (oh * out->w + ow) * channels;
            const int32_t nr = rows.hi - rows.lo, nc = cols.hi - cols.lo;
            if (what & TT_F16_SUBNORMAL) {
                for (c0 = 0; c0 + 8 <= channels; c0 += 8) output(win + c0, nr, nc, rs, cs, 8, act, yo + c0, 1, 1);
                if (c0 < channels) output(win + c0, nr, nc, rs, cs, channels - c0, act, yo + c0, 0, 1);
            } else {
                for (c0 = 0; c0 + 8 <= channels; c0 += 8) output(win + c0, nr, nc, rs, cs, 8, act, yo + c0, 1, 0);
                if (c0 < channels) output(win + c0, nr, nc, rs, cs, channels - c0, act, yo + c0, 0, 0);
            }
        }
    }
}
#endif
