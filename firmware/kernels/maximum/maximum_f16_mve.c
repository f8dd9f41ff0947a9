/* Half-precision maximum / minimum for Helium (MVE, Cortex-M55): 8 halves per compare and
 * select, a predicated tail; the same bits as the portable kernels (maximum_f16.c,
 * maximum_backward_f16.c). The compares are written as `gt` / `ge` with the operands in the
 * order that makes them C's `>` / `>=`: MVE's `gt` and `ge` are false for a NaN, as C's are
 * (its `lt` and `le` are true: "less than or unordered"), so minimum tests b > a, not a < b.
 * Forward: a > b ? a : b (minimum b > a ? a : b). Gradient of an operand of the output's
 * shape: grad_y where x wins (x > other, or x >= other when x is the first operand; minimum
 * other > x, other >= x), else +0, then vaddq_f16 into the old gradient when accumulating.
 * Broadcast operands as tt_bcast_mve.h walks them. Empty where __ARM_FEATURE_MVE is not
 * defined. */
#include "tt_kernels.h"
#include "tt_train_kernels.h"
#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#include "tt_bcast_mve.h"

#define TT_INLINE static inline __attribute__((always_inline))

/* One run; the flags are constants where it is inlined (no test per vector for them). */
TT_INLINE void select_loop(const float16_t *a, int32_t va, const float16_t *b, int32_t vb, int32_t n,
                           int32_t minimum, float16_t *y)
{
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const float16x8_t x = tt_bcast_load_f16(a, va, i, p), z = tt_bcast_load_f16(b, vb, i, p);
        vstrhq_p_f16(y + i, vpselq_f16(x, z, minimum ? vcmpgtq_f16(z, x) : vcmpgtq_f16(x, z)), p);
    }
}

static void select_run(const float16_t *a, int32_t va, const float16_t *b, int32_t vb, int32_t n,
                       int32_t minimum, float16_t *y)
{
    if (va && vb) select_loop(a, 1, b, 1, n, minimum, y);
    else if (va) select_loop(a, 1, b, 0, n, minimum, y);
    else select_loop(a, 0, b, vb, n, minimum, y);
}

TT_INLINE void select_bcast(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t minimum, tt_f16 *y)
{
    const float16_t *ah = (const float16_t *)a, *bh = (const float16_t *)b;
    float16_t *yh = (float16_t *)y;
    int32_t va, vb, i, j;
    if (tt_bcast_flat(bc, &va, &vb)) {
        select_run(ah, va, bh, vb, bc->h * bc->w * bc->c, minimum, yh);
        return;
    }
    for (i = 0; i < bc->h; ++i)
        for (j = 0; j < bc->w; ++j, yh += bc->c)
            select_run(ah + i * bc->a_sh + j * bc->a_sw, bc->a_sc != 0, bh + i * bc->b_sh + j * bc->b_sw,
                       bc->b_sc != 0, bc->c, minimum, yh);
}

void tt_maximum_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y)
{
    select_run((const float16_t *)a, 1, (const float16_t *)b, 1, n, 0, (float16_t *)y);
}

void tt_minimum_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y)
{
    select_run((const float16_t *)a, 1, (const float16_t *)b, 1, n, 1, (float16_t *)y);
}

void tt_maximum_bcast_f16_mve(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y)
{
    select_bcast(a, b, bc, 0, y);
}

void tt_minimum_bcast_f16_mve(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y)
{
    select_bcast(a, b, bc, 1, y);
}

TT_INLINE mve_pred16_t x_wins(float16x8_t x, float16x8_t o, int32_t first, int32_t minimum)
{
    if (minimum) return first ? vcmpgeq_f16(o, x) : vcmpgtq_f16(o, x);
    return first ? vcmpgeq_f16(x, o) : vcmpgtq_f16(x, o);
}

TT_INLINE void grad_loop(const float16_t *x, const float16_t *o, int32_t vo, const float16_t *gy, int32_t n,
                         int32_t first, int32_t minimum, int32_t accumulate, float16_t *gx)
{
    const float16x8_t zero = vdupq_n_f16(0.0f);
    int32_t i;
    for (i = 0; i < n; i += 8) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const mve_pred16_t w = x_wins(vldrhq_z_f16(x + i, p), tt_bcast_load_f16(o, vo, i, p), first, minimum);
        float16x8_t g = vpselq_f16(vldrhq_z_f16(gy + i, p), zero, w);
        if (accumulate) g = vaddq_x_f16(vldrhq_z_f16(gx + i, p), g, p);
        vstrhq_p_f16(gx + i, g, p);
    }
}

/* the loop with first, accumulate and the other operand's form as constants */
static void grad_run(const float16_t *x, const float16_t *o, int32_t vo, const float16_t *gy, int32_t n,
                       int32_t first, int32_t minimum, int32_t accumulate, float16_t *gx)
{
    switch ((first ? 4 : 0) | (accumulate ? 2 : 0) | (vo ? 1 : 0)) {
    case 0: grad_loop(x, o, 0, gy, n, 0, minimum, 0, gx); break;
    case 1: grad_loop(x, o, 1, gy, n, 0, minimum, 0, gx); break;
    case 2: grad_loop(x, o, 0, gy, n, 0, minimum, 1, gx); break;
    case 3: grad_loop(x, o, 1, gy, n, 0, minimum, 1, gx); break;
    case 4: grad_loop(x, o, 0, gy, n, 1, minimum, 0, gx); break;
    case 5: grad_loop(x, o, 1, gy, n, 1, minimum, 0, gx); break;
    case 6: grad_loop(x, o, 0, gy, n, 1, minimum, 1, gx); break;
    default: grad_loop(x, o, 1, gy, n, 1, minimum, 1, gx); break;
    }
}

TT_INLINE void grad_input(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first, int32_t minimum,
                          const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    const float16_t *xh = (const float16_t *)x, *oh = (const float16_t *)other, *gy = (const float16_t *)grad_y;
    float16_t *gx = (float16_t *)grad_x;
    const int32_t vo = tt_bcast_dense(bc, bc->b_sh, bc->b_sw, bc->b_sc);
    int32_t i, j;
    if (vo || tt_bcast_scalar(bc->b_sh, bc->b_sw, bc->b_sc)) {      /* x walks as the output: one run */
        grad_run(xh, oh, vo, gy, bc->h * bc->w * bc->c, first, minimum, accumulate, gx);
        return;
    }
    for (i = 0; i < bc->h; ++i)
        for (j = 0; j < bc->w; ++j, xh += bc->c, gy += bc->c, gx += bc->c)
            grad_run(xh, oh + i * bc->b_sh + j * bc->b_sw, bc->b_sc != 0, gy, bc->c, first, minimum, accumulate, gx);
}

void tt_maximum_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                                   const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    grad_input(bc, x, other, first, 0, grad_y, accumulate, grad_x);
}

void tt_minimum_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                                   const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x)
{
    grad_input(bc, x, other, first, 1, grad_y, accumulate, grad_x);
}
#endif
