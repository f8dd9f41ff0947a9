/* Helium variant (MVE, Cortex-M55) of tt_avg_pool2d_grad_input_f16 (avg_pool2d_backward_f16.c),
 * the same bits. Per input element, the float32 sum from +0 of grad_y / count over the outputs
 * whose window holds it, in row-major output order, then half(sum) or half(old + sum): here 8
 * channels at a time in float32 lanes (tt_f16_sum_mve.h: halves widened and sums narrowed by
 * integer operations, no VCVTB/VCVTT).
 *
 * The division: MVE has none; each term is divided in the lanes by tt_div_count_f32_mve
 * (tt_f16_sum_mve.h: correctly rounded for counts up to TT_F16_DIV_MAX, but -0 / count gives
 * +0, which a sum from +0 does not see). No float32 value is subnormal: the terms are 0 or
 * at least 2^-30, the sums and old + sum multiples of 2^-55 (old a multiple of 2^-24).
 *
 * Windows of more than TT_AVG_POOL_MVE_TAPS taps, and an inf or NaN in grad_y or (when
 * accumulating) in the old gradients, go to the portable kernel (MVE arithmetic returns the
 * default NaN, the scalar code keeps the payload), found by a first pass (8 halves a vector),
 * which also tells whether grad_y holds a subnormal: if not, the short widening serves. The
 * outputs that hold an input element are listed once per element (offset, -count, 1 / count)
 * on the stack. Empty where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_train_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_f16_sum_mve.h"

#define TT_AVG_POOL_MVE_TAPS TT_F16_DIV_MAX

typedef struct {
    int32_t off;          /* of the output's channel 0 in grad_y */
    float count, inv;     /* -count (for the remainder) and 1 / count */
} term;

/* one input element's channels [0, n), n <= 8: the sums, then the store */
static inline __attribute__((always_inline)) void element(const tt_f16 *grad_y, const term *terms, int32_t nt,
                                                          int32_t n, int32_t accumulate, tt_f16 *gx, const int full,
                                                          const int exact)
{
    const mve_pred16_t p0 = vctp32q((uint32_t)n), p1 = vctp32q((uint32_t)(n > 4 ? n - 4 : 0));
    const uint32x4_t m15 = vdupq_n_u32(0x7FFFu);
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int32_t k;
    for (k = 0; k < nt; ++k) {
        const term *t = terms + k;
        const tt_f16 *gy = grad_y + t->off;
        const float32x4_t a0 = tt_load_f16_mve(gy, p0, full, exact);
        acc0 = vaddq_f32(acc0, tt_div_count_f32_mve(a0, t->inv, t->count));
        if (full || n > 4) {
            const float32x4_t a1 = tt_load_f16_mve(gy + 4, p1, full, exact);
            acc1 = vaddq_f32(acc1, tt_div_count_f32_mve(a1, t->inv, t->count));
        }
    }
    if (accumulate) {
        const uint32x4_t o0 = full ? vldrhq_u32(gx) : vldrhq_z_u32(gx, p0);
        acc0 = vaddq_f32(tt_widen_f16_mve(o0, vandq_u32(o0, m15)), acc0);
        if (full || n > 4) {
            const uint32x4_t o1 = full ? vldrhq_u32(gx + 4) : vldrhq_z_u32(gx + 4, p1);
            acc1 = vaddq_f32(tt_widen_f16_mve(o1, vandq_u32(o1, m15)), acc1);
        }
    }
    if (full) {
        vstrhq_u32(gx, tt_narrow_f16_mve(acc0, vdupq_n_u32(0x7C00u)));
        vstrhq_u32(gx + 4, tt_narrow_f16_mve(acc1, vdupq_n_u32(0x7C00u)));
    } else {
        vstrhq_p_u32(gx, tt_narrow_f16_mve(acc0, vdupq_n_u32(0x7C00u)), p0);
        vstrhq_p_u32(gx + 4, tt_narrow_f16_mve(acc1, vdupq_n_u32(0x7C00u)), p1);
    }
}

void tt_avg_pool2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t channels = in->c;
    term terms[TT_AVG_POOL_MVE_TAPS];
    int32_t ih, iw, c0, oh, ow, nt;
    const int what = s->kh * s->kw > TT_AVG_POOL_MVE_TAPS ? TT_F16_INF_NAN : tt_scan_f16_mve(grad_y, out->h * out->w * out->c);
    if ((what | (accumulate ? tt_scan_f16_mve(grad_x, in->h * in->w * in->c) : 0)) & TT_F16_INF_NAN) {
        tt_avg_pool2d_grad_input_f16(s, grad_y, accumulate, grad_x);
        return;
    }
    for (ih = 0; ih < in->h; ++ih) {
        const tt_window ohs = tt_window_sources(ih, g->stride_h, g->pad_top, s->kh, out->h);
        for (iw = 0; iw < in->w; ++iw) {
            const tt_window ows = tt_window_sources(iw, g->stride_w, g->pad_left, s->kw, out->w);
            tt_f16 *gx = grad_x + (ih * in->w + iw) * channels;
            nt = 0;
            for (oh = ohs.lo; oh < ohs.hi; ++oh) {
                const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, s->kh, in->h);
                for (ow = ows.lo; ow < ows.hi; ++ow, ++nt) {
                    const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, s->kw, in->w);
                    const float count = (float)((rows.hi - rows.lo) * (cols.hi - cols.lo));
                    terms[nt].off = (oh * out->w + ow) * out->c;
                    terms[nt].count = -count;
                    terms[nt].inv = 1.0f / count;
                }
            }
            if (what & TT_F16_SUBNORMAL) {
                for (c0 = 0; c0 + 8 <= channels; c0 += 8) element(grad_y + c0, terms, nt, 8, accumulate, gx + c0, 1, 1);
                if (c0 < channels) element(grad_y + c0, terms, nt, channels - c0, accumulate, gx + c0, 0, 1);
            } else {
                for (c0 = 0; c0 + 8 <= channels; c0 += 8) element(grad_y + c0, terms, nt, 8, accumulate, gx + c0, 1, 0);
                if (c0 < channels) element(grad_y + c0, terms, nt, channels - c0, accumulate, gx + c0, 0, 0);
            }
        }
    }
}
#endif
