/* Float32 lanes for the Helium variants of the portable kernels that sum halves in float32
 * (the bias update, the global mean, average pooling): the channels in the lanes, each lane
 * summing its channel's halves from +0 in the portable kernel's order, so that every float32
 * add rounds as the scalar one does and the bits are the portable kernels'. Header only; the
 * callers include it inside their __ARM_FEATURE_MVE & 2 block, after <arm_mve.h>.
 *
 * Two QEMU 7.2 facts (docs/training.md): MVE's half <-> float32 conversions VCVTB/VCVTT give
 * wrong values, and MVE float32 arithmetic flushes subnormals to zero. So halves are widened
 * and narrowed with integer operations, and no float32 value that matters is subnormal:
 *
 * Widening (tt_widen_f16_mve), a = the half's bits without the sign: v1 = a * 2^-24
 *   (VCVT from fixed point with 24 fraction bits: exact, a < 2^15), v2 = the bits a << 13 read
 *   as a float32 (the half's value times 2^-112) times 2^112. For a normal half v2 is its value
 *   and v1 <= v2 ((1024 + m) 2^(e-1) >= 1024 e + m for e >= 1, equality at e = 1); for a
 *   subnormal half (or zero) v1 is its value, and v2 is 0 when the multiply flushes its
 *   subnormal operand (QEMU), or the value itself when it does not (the architecture's FZ = 0):
 *   max(v1, v2) is the value either way; then the sign. Every widened value is 0 or at least
 *   2^-24 in magnitude: a normal float32. 7 instructions a vector.
 * The short widening (tt_widen_normal_f16_mve), for an input with no subnormal half: the half
 *   sign-extended, shifted left by 13, bits 28-30 cleared, is the sign and a << 13: a float32
 *   2^-112 times the value, normal or zero; times 2^112. 3 instructions a vector.
 * A first pass (tt_scan_f16_mve, 8 halves a vector) tells which: and finds infinities and
 *   NaNs, which widen to finite values (>= 2^16) here: the callers give those calls to the
 *   portable kernel, whose NaN keeps its payload (MVE arithmetic returns the default NaN).
 * Sums: of multiples of 2^-24, rounded to float32, hence multiples of 2^-24: 0 or normal.
 *
 * Narrowing (tt_narrow_f16_mve) is tt_f2h for every finite float32, bit for bit: a result in
 *   a normal half's range rounds to nearest even by integer adds at bit 13 (after rebiasing the
 *   exponent); below 2^-14 the float32 add of 0.5 rounds the value to a multiple of 2^-24 to
 *   nearest even (the float32 ulp at 0.5 is 2^-24: half's subnormal step) and the bits of
 *   0.5 are subtracted (an operand flushed to 0 there is below 2^-126, which tt_f2h also
 *   rounds to a signed zero); from 65520 up, infinity. NaN is the caller's business. The
 *   absolute value is VABS: a bit operation, whatever the flush mode. */
#ifndef TT_F16_SUM_MVE_H
#define TT_F16_SUM_MVE_H

#include "tt_f16.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

#define TT_F16_MVE_INLINE static inline __attribute__((always_inline))

/* u: halves zero-extended to 32-bit lanes; a = u & 0x7FFF. Their values as float32. */
TT_F16_MVE_INLINE float32x4_t tt_widen_f16_mve(uint32x4_t u, uint32x4_t a)
{
    const float32x4_t v1 = vcvtq_n_f32_u32(a, 24);
    const float32x4_t v2 = vmulq_n_f32(vreinterpretq_f32_u32(vshlq_n_u32(a, 13)), 0x1p112f);
    /* the sign: bit 15 of u moved to bit 0 and inserted at bit 31 (VSLI) */
    return vreinterpretq_f32_u32(vsliq_n_u32(vreinterpretq_u32_f32(vmaxnmq_f32(v1, v2)), vshrq_n_u32(u, 15), 31));
}

/* s: halves sign-extended to 32-bit lanes, none subnormal: their values as float32 (the bits
 * shifted into place, the exponent rebiased by the multiply: 3 instructions where the exact
 * widening takes 7). */
TT_F16_MVE_INLINE float32x4_t tt_widen_normal_f16_mve(int32x4_t s)
{
    return vmulq_n_f32(vreinterpretq_f32_u32(vbicq_n_u32(vreinterpretq_u32_s32(vshlq_n_s32(s, 13)), 0x70000000u)),
                       0x1p112f);
}

/* The value of lanes loaded from x (4 halves; predicated by p unless full): the exact
 * widening, or the normal one when the caller knows there is no subnormal (exact == 0). */
TT_F16_MVE_INLINE float32x4_t tt_load_f16_mve(const tt_f16 *x, mve_pred16_t p, const int full, const int exact)
{
    if (exact) {
        const uint32x4_t u = full ? vldrhq_u32(x) : vldrhq_z_u32(x, p);
        return tt_widen_f16_mve(u, vandq_u32(u, vdupq_n_u32(0x7FFFu)));
    }
    return tt_widen_normal_f16_mve(full ? vldrhq_s32((const int16_t *)x) : vldrhq_z_s32((const int16_t *)x, p));
}

/* tt_f2h of each finite lane of v, in the low 16 bits of the lanes (constants as scalar
 * operands where Helium has the form: the vector registers are few). */
TT_F16_MVE_INLINE uint32x4_t tt_narrow_f16_mve(float32x4_t v, uint32x4_t inf16)
{
    const uint32x4_t a = vreinterpretq_u32_f32(vabsq_f32(v));
    const uint32x4_t sign = vshrq_n_u32(veorq_u32(vreinterpretq_u32_f32(v), a), 16);
    /* normal: rebias (-112 << 23), add 0xFFF + the lowest kept bit, drop 13 bits; from 65520 up
     * this gives 0x7C00 or more: min(, 0x7C00) is the infinity */
    const uint32x4_t normal = vshrq_n_u32(vaddq_u32(vaddq_n_u32(a, 0xC8000FFFu), vshrq_n_u32(vshlq_n_u32(a, 18), 31)),
                                          13);
    const uint32x4_t sub = vsubq_n_u32(vreinterpretq_u32_f32(vaddq_n_f32(vreinterpretq_f32_u32(a), 0.5f)),
                                       0x3F000000u);
    const uint32x4_t h = vpselq_u32(normal, sub, vcmpcsq_n_u32(a, 113u << 23));
    return vorrq_u32(vminq_u32(h, inf16), sign);
}

/* What the halves x[0 .. n) hold: TT_F16_INF_NAN if an inf or NaN, TT_F16_SUBNORMAL if a
 * subnormal (8 halves a vector: a = h & 0x7FFF; inf / NaN: a >= 0x7C00; subnormal: a - 1 <
 * 0x3FF, a zero wrapping to 0xFFFF). */
#define TT_F16_INF_NAN 1
#define TT_F16_SUBNORMAL 2
static inline int tt_scan_f16_mve(const tt_f16 *x, int32_t n)
{
    const uint16x8_t m15 = vdupq_n_u16(0x7FFFu);
    uint16x8_t big = vdupq_n_u16(0), low = vdupq_n_u16(0xFFFFu);
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8) {       /* (unpredicated: gcc moves a predicate through VPR) */
        const uint16x8_t a = vandq_u16(vld1q_u16(x + i), m15);
        big = vmaxq_u16(big, a);
        low = vminq_u16(low, vsubq_n_u16(a, 1u));
    }
    if (i < n) {
        const mve_pred16_t p = vctp16q((uint32_t)(n - i));
        const uint16x8_t a = vandq_u16(vldrhq_z_u16(x + i, p), m15);      /* (0 past the end: no harm) */
        big = vmaxq_u16(big, a);
        low = vminq_u16(low, vsubq_n_u16(a, 1u));
    }
    return (vmaxvq_u16(0, big) >= 0x7C00u ? TT_F16_INF_NAN : 0) | (vminvq_u16(0xFFFFu, low) < 0x3FFu ? TT_F16_SUBNORMAL : 0);
}

/* ---- column sums: sums[k] = the float32 sum from +0 of x[r * stride + k] over r = 0, 1, ..
 * rows - 1 in that order, for k < n <= 8 (4 lanes a vector: Helium has 8 vector registers).
 * No inf or NaN (the caller has scanned x); `exact`: there are subnormals (the exact
 * widening); `full` (a constant): n == 8, unpredicated loads. */
TT_F16_MVE_INLINE void tt_column_sums8_f16_mve(const tt_f16 *x, int32_t rows, int32_t stride, int32_t n,
                                               float *sums, const int full, const int exact)
{
    const mve_pred16_t p0 = vctp32q((uint32_t)n), p1 = vctp32q((uint32_t)(n > 4 ? n - 4 : 0));
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int32_t r;
    for (r = 0; r < rows; ++r, x += stride) {
        acc0 = vaddq_f32(acc0, tt_load_f16_mve(x, p0, full, exact));
        if (full || n > 4) acc1 = vaddq_f32(acc1, tt_load_f16_mve(x + 4, p1, full, exact));
    }
    if (full) {
        vst1q_f32(sums, acc0);
        vst1q_f32(sums + 4, acc1);
    } else {
        vstrwq_p_f32(sums, acc0, p0);
        vstrwq_p_f32(sums + 4, acc1, p1);
    }
}

/* sums[0 .. n) of the columns x[0 .. n), n <= 8 (`exact` as above). */
static inline void tt_column_sums_f16_mve(const tt_f16 *x, int32_t rows, int32_t stride, int32_t n, float *sums,
                                          int exact)
{
    if (exact) {
        if (n == 8) tt_column_sums8_f16_mve(x, rows, stride, 8, sums, 1, 1);
        else tt_column_sums8_f16_mve(x, rows, stride, n, sums, 0, 1);
    } else {
        if (n == 8) tt_column_sums8_f16_mve(x, rows, stride, 8, sums, 1, 0);
        else tt_column_sums8_f16_mve(x, rows, stride, n, sums, 0, 0);
    }
}

/* ---- window sums (average pooling): *s0, *s1 = the float32 sums from +0 of
 * x[i * row_stride + j * col_stride + k] over i < rows, then j < cols (rows, then columns, in
 * order), lanes k < 4 and 4 <= k < n <= 8; `full`, `exact` as for the column sums (no inf or
 * NaN). */
TT_F16_MVE_INLINE void tt_window_sums8_f16_mve(const tt_f16 *x, int32_t rows, int32_t cols, int32_t row_stride,
                                               int32_t col_stride, int32_t n, float32x4_t *s0, float32x4_t *s1,
                                               const int full, const int exact)
{
    const mve_pred16_t p0 = vctp32q((uint32_t)n), p1 = vctp32q((uint32_t)(n > 4 ? n - 4 : 0));
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int32_t i, j;
    for (i = 0; i < rows; ++i) {
        const tt_f16 *r = x + i * row_stride;
        for (j = 0; j < cols; ++j, r += col_stride) {
            acc0 = vaddq_f32(acc0, tt_load_f16_mve(r, p0, full, exact));
            if (full || n > 4) acc1 = vaddq_f32(acc1, tt_load_f16_mve(r + 4, p1, full, exact));
        }
    }
    *s0 = acc0;
    *s1 = acc1;
}

/* ---- division by a window's count: a / count correctly rounded in each lane, with
 * inv = 1 / count (rounded) and neg = -count: q0 = a * inv, r = a + q0 * neg (fused: exact),
 * q = q0 + r * inv (fused; Markstein's correction step). Checked exhaustively on the host for
 * every float32 significand and every count up to TT_F16_DIV_MAX (tests/test_fp16_sum_mve.py;
 * a scaling by a power of two changes nothing while no value is subnormal or overflows), but
 * for the sign of a zero quotient: -0 / count gives +0 (the sums here start at +0 and are
 * never -0; the pool gradient's terms are added to such a sum). For a >= 2^-24 (a multiple of
 * 2^-24): q0, q >= 2^-30, r 0 or a multiple of 2^-53: no subnormal. */
#define TT_F16_DIV_MAX 64
TT_F16_MVE_INLINE float32x4_t tt_div_count_f32_mve(float32x4_t a, float inv, float neg)
{
    const float32x4_t q0 = vmulq_n_f32(a, inv);
    return vfmaq_n_f32(q0, vfmaq_n_f32(a, q0, neg), inv);
}

#endif   /* __ARM_FEATURE_MVE & 2 */

#endif
