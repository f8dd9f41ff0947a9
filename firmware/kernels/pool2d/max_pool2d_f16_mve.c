/* Helium variants (MVE, Cortex-M55) of the half-precision max pooling kernels
 * (max_pool2d_f16.c, max_pool2d_backward_f16.c): the same bits, 8 channels in the lanes.
 * forward   m = the window's first tap, then m = v where v > m (half compares are exact and
 *           keep subnormals, FPSCR.FZ16 = 0; a NaN never replaces m, as in the scalar
 *           `v > m`), then the activation on the half; an empty window gives 0.
 * backward  non-overlapping windows: per lane the first tap holding the maximum (found the
 *           same way) receives gy; with accumulate the portable kernel runs (old + gy).
 * A last partial 8 channels is predicated. Empty where __ARM_FEATURE_MVE & 2 is not set. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"
#include "tt_window.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

void tt_max_pool2d_f16_mve(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out)
{
    const float16_t *xh = (const float16_t *)x;
    float16_t *yh = (float16_t *)y;
    const int32_t ch = in->c;
    int32_t oh, ow, c, ih, iw;
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, kw, in->w);
            for (c = 0; c < out->c; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(out->c - c));
                float16x8_t m = vdupq_n_f16(0.0f);
                int32_t first = 1;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw) {
                        const float16x8_t v = vldrhq_z_f16(xh + (ih * in->w + iw) * ch + c, p);
                        m = first ? v : vpselq_f16(v, m, vcmpgtq_f16(v, m));
                        first = 0;
                    }
                }
                if (act != 0) {
                    m = vpselq_f16(vdupq_n_f16(0.0f), m, vcmpgtq_f16(vdupq_n_f16(0.0f), m));  /* not "lt": true for a NaN */
                    if (act == 2) m = vpselq_f16(vdupq_n_f16(6.0f), m, vcmpgtq_n_f16(m, (float16_t)6.0f));
                }
                vstrhq_p_f16(yh + (oh * out->w + ow) * out->c + c, m, p);
            }
        }
    }
}

void tt_max_pool2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *x, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const float16_t *xh = (const float16_t *)x;
    const int32_t ch = in->c, n = in->h * in->w * in->c;
    int32_t oh, ow, c, ih, iw, i;
    if (accumulate) {
        tt_max_pool2d_grad_input_f16(s, x, grad_y, accumulate, grad_x);
        return;
    }
    for (i = 0; i < n; i += 8) vstrhq_p_u16(grad_x + i, vdupq_n_u16(0), vctp16q((uint32_t)(n - i)));
    for (oh = 0; oh < out->h; ++oh) {
        const tt_window rows = tt_window_clip(oh, g->stride_h, g->pad_top, s->kh, in->h);
        for (ow = 0; ow < out->w; ++ow) {
            const tt_window cols = tt_window_clip(ow, g->stride_w, g->pad_left, s->kw, in->w);
            for (c = 0; c < out->c; c += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(out->c - c));
                const uint16x8_t d = vldrhq_z_u16(grad_y + (oh * out->w + ow) * out->c + c, p);
                float16x8_t m = vdupq_n_f16(0.0f);
                uint16x8_t best = vdupq_n_u16(0);
                uint16_t t = 0;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw, ++t) {
                        const float16x8_t v = vldrhq_z_f16(xh + (ih * in->w + iw) * ch + c, p);
                        if (t == 0) {
                            m = v;
                        } else {
                            const mve_pred16_t gt = vcmpgtq_f16(v, m);
                            m = vpselq_f16(v, m, gt);
                            best = vpselq_u16(vdupq_n_u16(t), best, gt);
                        }
                    }
                }
                t = 0;
                for (ih = rows.lo; ih < rows.hi; ++ih) {
                    for (iw = cols.lo; iw < cols.hi; ++iw, ++t)
                        vstrhq_p_u16(grad_x + (ih * in->w + iw) * ch + c, d, vcmpeqq_n_u16(best, t) & p);
                }
            }
        }
    }
}
#endif
