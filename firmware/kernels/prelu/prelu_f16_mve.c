/* Half-precision prelu for Helium (MVE, Cortex-M55), forward (equal shapes, broadcast) and
 * input gradient: the channels of a pixel in the lanes, alpha loaded (one per channel) or
 * duplicated (one per pixel); vmulq_f16 / vaddq_f16 round as the portable kernels do
 * (prelu_f16.c, prelu_backward_f16.c: the same bits; tinytrain/ops/prelu.py models both).
 * One alpha a channel over a whole plane (Keras PReLU(shared_axes=[1, 2])): a block of 8
 * channels' alphas loaded once, then that block of every pixel (no per-pixel tail).
 * The products are taken where 0 > x (forward) or 0 >= x (gradient): gt / ge, false for a
 * NaN as C's < / <= (MVE's lt / le would be true), so a NaN x is selected, never multiplied.
 * A tt_bcast whose x or alpha steps along the channels by more than 1 (none the compiler
 * makes) goes to the portable kernel. Empty where __ARM_FEATURE_MVE has no floating point. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

/* alpha of lanes i..i+7 of a row: loaded (step 1) or one value (step 0) */
static inline float16x8_t alpha_lanes(const float16_t *a, int32_t step, int32_t i, mve_pred16_t p)
{
    return step ? vldrhq_z_f16(a + i, p) : vdupq_n_f16(a[0]);
}

/* alpha one per channel and x the whole (pixels, c) plane, row-major */
static int per_channel_plane(const tt_bcast *bc)
{
    return bc->b_sh == 0 && bc->b_sw == 0 && bc->b_sc == 1 && bc->a_sc == 1 && bc->a_sw == bc->c
           && bc->a_sh == bc->w * bc->c;
}

static inline float16x8_t prelu_v(float16x8_t v, float16x8_t a)
{
    return vpselq_f16(vmulq_f16(v, a), v, vcmpgtq_f16(vdupq_n_f16(0.0f), v));
}

static inline float16x8_t prelu_grad_v(float16x8_t x, float16x8_t d, float16x8_t a)
{
    return vpselq_f16(vmulq_f16(d, a), d, vcmpgeq_f16(vdupq_n_f16(0.0f), x));
}

/* A block of 8 channels over every pixel: whole blocks unpredicated, the last one predicated. */
static void prelu_channels(const float16_t *x, const float16_t *alpha, int32_t pixels, int32_t c, float16_t *y)
{
    int32_t k, q;
    for (k = 0; k < c; k += 8) {
        const float16_t *xk = x + k;
        float16_t *yk = y + k;
        if (k + 8 <= c) {
            const float16x8_t a = vld1q_f16(alpha + k);
            for (q = 0; q < pixels; ++q, xk += c, yk += c) vst1q_f16(yk, prelu_v(vld1q_f16(xk), a));
        } else {
            const mve_pred16_t p = vctp16q((uint32_t)(c - k));
            const float16x8_t a = vldrhq_z_f16(alpha + k, p);
            for (q = 0; q < pixels; ++q, xk += c, yk += c) vstrhq_p_f16(yk, prelu_v(vldrhq_z_f16(xk, p), a), p);
        }
    }
}

static void prelu_grad_channels(const float16_t *x, const float16_t *alpha, const float16_t *grad_y,
                                int32_t accumulate, int32_t pixels, int32_t c, float16_t *grad_x)
{
    int32_t k, q;
    for (k = 0; k < c; k += 8) {
        const float16_t *xk = x + k, *gk = grad_y + k;
        float16_t *ok = grad_x + k;
        if (k + 8 <= c && !accumulate) {
            const float16x8_t a = vld1q_f16(alpha + k);
            for (q = 0; q < pixels; ++q, xk += c, gk += c, ok += c)
                vst1q_f16(ok, prelu_grad_v(vld1q_f16(xk), vld1q_f16(gk), a));
        } else if (k + 8 <= c) {
            const float16x8_t a = vld1q_f16(alpha + k);
            for (q = 0; q < pixels; ++q, xk += c, gk += c, ok += c)
                vst1q_f16(ok, vaddq_f16(vld1q_f16(ok), prelu_grad_v(vld1q_f16(xk), vld1q_f16(gk), a)));
        } else {
            const mve_pred16_t p = vctp16q((uint32_t)(c - k));
            const float16x8_t a = vldrhq_z_f16(alpha + k, p);
            for (q = 0; q < pixels; ++q, xk += c, gk += c, ok += c) {
                float16x8_t g = prelu_grad_v(vldrhq_z_f16(xk, p), vldrhq_z_f16(gk, p), a);
                if (accumulate) g = vaddq_f16(vldrhq_z_f16(ok, p), g);
                vstrhq_p_f16(ok, g, p);
            }
        }
    }
}

static void prelu_row(const float16_t *x, const float16_t *a, int32_t a_step, int32_t n, float16_t *y)
{
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8)
        vst1q_f16(y + i, prelu_v(vld1q_f16(x + i), a_step ? vld1q_f16(a + i) : vdupq_n_f16(a[0])));
    if (i < n) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        vstrhq_p_f16(y + i, prelu_v(vldrhq_z_f16(x + i, p), alpha_lanes(a, a_step, i, p)), p);
    }
}

void tt_prelu_f16_mve(const tt_f16 *x, const tt_f16 *alpha, int32_t n, tt_f16 *y)
{
    prelu_row((const float16_t *)x, (const float16_t *)alpha, 1, n, (float16_t *)y);
}

static int rows_contiguous(const tt_bcast *bc)
{
    return (bc->a_sc == 1 || bc->c == 1) && (bc->b_sc == 0 || bc->b_sc == 1);
}

void tt_prelu_bcast_f16_mve(const tt_f16 *x, const tt_f16 *alpha, const tt_bcast *bc, tt_f16 *y)
{
    int32_t i, j;
    if (per_channel_plane(bc)) {
        prelu_channels((const float16_t *)x, (const float16_t *)alpha, bc->h * bc->w, bc->c, (float16_t *)y);
        return;
    }
    if (!rows_contiguous(bc)) {
        tt_prelu_bcast_f16(x, alpha, bc, y);
        return;
    }
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j, y += bc->c) {
            prelu_row((const float16_t *)(x + i * bc->a_sh + j * bc->a_sw),
                      (const float16_t *)(alpha + i * bc->b_sh + j * bc->b_sw), bc->b_sc, bc->c, (float16_t *)y);
        }
    }
}

void tt_prelu_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *alpha, const tt_f16 *grad_y,
                                 int32_t accumulate, tt_f16 *grad_x)
{
    int32_t i, j, k;
    if (bc->b_sc != 0 && bc->b_sc != 1) {
        tt_prelu_grad_input_f16(bc, x, alpha, grad_y, accumulate, grad_x);
        return;
    }
    if (bc->b_sh == 0 && bc->b_sw == 0 && bc->b_sc == 1) {       /* one alpha a channel */
        prelu_grad_channels((const float16_t *)x, (const float16_t *)alpha, (const float16_t *)grad_y, accumulate,
                            bc->h * bc->w, bc->c, (float16_t *)grad_x);
        return;
    }
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const float16_t *a = (const float16_t *)(alpha + i * bc->b_sh + j * bc->b_sw);
            const float16_t *xh = (const float16_t *)x, *gh = (const float16_t *)grad_y;
            float16_t *oh = (float16_t *)grad_x;
            for (k = 0; k < bc->c; k += 8) {
                const mve_pred16_t p = vctp16q((uint32_t)(bc->c - k));
                float16x8_t g = prelu_grad_v(vldrhq_z_f16(xh + k, p), vldrhq_z_f16(gh + k, p),
                                             alpha_lanes(a, bc->b_sc, k, p));
                if (accumulate) g = vaddq_f16(vldrhq_z_f16(oh + k, p), g);
                vstrhq_p_f16(oh + k, g, p);
            }
            x += bc->c;
            grad_y += bc->c;
            grad_x += bc->c;
        }
    }
}
#endif
