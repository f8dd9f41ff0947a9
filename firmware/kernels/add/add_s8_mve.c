/* int8 elementwise add (equal shapes) with Helium (Cortex-M55): tt_add_s8's bytes (declared
 * in tt_kernels_simd.h).
 *
 * The reference's integer steps per element, four int32 lanes at a time: (a - a_zp) <<
 * left_shift, TFLite's MultiplyByQuantizedMultiplier for each input (VQRDMULH is
 * SaturatingRoundingDoublingHighMul exactly; the rounding right shift is VRSHL after
 * taking one off negative values, gemmlowp's RoundingDivideByPOT: the arrangement of
 * tt_requant_s32x4_mve), the sum, the output's multiplier, + out_zp (wrapping as the C
 * addition does on the core), the activation clamp. Per sixteen elements: two VLDRB.S32 x 4
 * instead of 32 byte loads and ~100 instructions an element in the reference's calls. The
 * last 1-15 elements are tail-predicated. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* MultiplyByQuantizedMultiplier of four lanes by one multiplier / shift (left = max(shift,
 * 0), right = min(shift, 0)). */
static inline int32x4_t mbqm(int32x4_t x, int32_t mult, int32_t left, int32_t right)
{
    int32x4_t z = vqrdmulhq_n_s32(vshlq_r_s32(x, left), mult);
    if (right) z = vqaddq_s32(z, vshrq_n_s32(z, 31));   /* negative: one off before rounding */
    return vrshlq_n_s32(z, right);
}

static inline int32x4_t add4(int32x4_t a, int32x4_t b, const tt_add_params *p, int32_t al, int32_t ar,
                             int32_t bl, int32_t br, int32_t ol, int32_t or_)
{
    const int32x4_t as = vshlq_r_s32(vsubq_n_s32(a, p->a_zp), p->left_shift);
    const int32x4_t bs = vshlq_r_s32(vsubq_n_s32(b, p->b_zp), p->left_shift);
    int32x4_t y = vaddq_s32(mbqm(as, p->a_mult, al, ar), mbqm(bs, p->b_mult, bl, br));
    y = vaddq_n_s32(mbqm(y, p->out_mult, ol, or_), p->out_zp);
    return vminq_s32(vmaxq_s32(y, vdupq_n_s32(p->act_min)), vdupq_n_s32(p->act_max));
}

void tt_add_s8_mve(const int8_t *a, const int8_t *b, int32_t n, const tt_add_params *p, int8_t *y)
{
    const int32_t al = p->a_shift > 0 ? p->a_shift : 0, ar = p->a_shift > 0 ? 0 : p->a_shift;
    const int32_t bl = p->b_shift > 0 ? p->b_shift : 0, br = p->b_shift > 0 ? 0 : p->b_shift;
    const int32_t ol = p->out_shift > 0 ? p->out_shift : 0, or_ = p->out_shift > 0 ? 0 : p->out_shift;
    int32_t i;
    for (i = 0; i + 4 <= n; i += 4)
        vstrbq_s32(y + i, add4(vldrbq_s32(a + i), vldrbq_s32(b + i), p, al, ar, bl, br, ol, or_));
    if (i < n) {
        const mve_pred16_t m = vctp32q((uint32_t)(n - i));
        vstrbq_p_s32(y + i, add4(vldrbq_z_s32(a + i, m), vldrbq_z_s32(b + i, m), p, al, ar, bl, br, ol, or_), m);
    }
}

#endif
