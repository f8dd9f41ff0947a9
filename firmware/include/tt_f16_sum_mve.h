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
 *   2^-24 in magnitude: a normal float32. inf / NaN halves widen to finite values (>= 2^16):
 *   the callers find them from the bits (a >= 0x7C00) and give those channels to the scalar
 *   code, whose NaN keeps its payload (MVE arithmetic returns the default NaN).
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
    const uint32x4_t sign = vshlq_n_u32(veorq_u32(u, a), 16);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(vmaxnmq_f32(v1, v2)), sign));
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

/* Whether any of the halves x[0 .. n) is an inf or NaN. */
static inline int tt_any_inf_nan_f16_mve(const tt_f16 *x, int32_t n)
{
    const uint16x8_t m15 = vdupq_n_u16(0x7FFFu);
    uint16x8_t big = vdupq_n_u16(0);
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8) big = vmaxq_u16(big, vandq_u16(vld1q_u16(x + i), m15));
    if (i < n) big = vmaxq_u16(big, vandq_u16(vldrhq_z_u16(x + i, vctp16q((uint32_t)(n - i))), m15));
    return vmaxvq_u16(0, big) >= 0x7C00u;
}

/* ---- column sums: sums[k] = the float32 sum from +0 of x[r * stride + k] over r = 0, 1, ..
 * rows - 1 in that order, for k < n <= 8 (4 lanes a vector: Helium has 8 vector registers,
 * two accumulators and the inf / NaN watch leave none for more). Returns 0, or 1 when a
 * column holds an inf or NaN: the caller then redoes the block's sums in scalar. `full`
 * (a constant): n == 8, unpredicated loads. */
TT_F16_MVE_INLINE int tt_column_sums8_f16_mve(const tt_f16 *x, int32_t rows, int32_t stride, int32_t n,
                                              float *sums, const int full)
{
    const mve_pred16_t p0 = vctp32q((uint32_t)n), p1 = vctp32q((uint32_t)(n > 4 ? n - 4 : 0));
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    const uint32x4_t m15 = vdupq_n_u32(0x7FFFu);       /* (vbic is destructive: a move a vector) */
    uint32x4_t big = vdupq_n_u32(0);
    int32_t r;
    for (r = 0; r < rows; ++r, x += stride) {
        const uint32x4_t u0 = full ? vldrhq_u32(x) : vldrhq_z_u32(x, p0);
        const uint32x4_t a0 = vandq_u32(u0, m15);
        acc0 = vaddq_f32(acc0, tt_widen_f16_mve(u0, a0));
        big = vmaxq_u32(big, a0);
        if (full || n > 4) {
            const uint32x4_t u1 = full ? vldrhq_u32(x + 4) : vldrhq_z_u32(x + 4, p1);
            const uint32x4_t a1 = vandq_u32(u1, m15);
            acc1 = vaddq_f32(acc1, tt_widen_f16_mve(u1, a1));
            big = vmaxq_u32(big, a1);
        }
    }
    if (full) {
        vst1q_f32(sums, acc0);
        vst1q_f32(sums + 4, acc1);
    } else {
        vstrwq_p_f32(sums, acc0, p0);
        vstrwq_p_f32(sums + 4, acc1, p1);
    }
    return vmaxvq_u32(0, big) >= 0x7C00u;
}

/* The portable sum of one column. */
static inline float tt_column_sum_f16(const tt_f16 *x, int32_t rows, int32_t stride)
{
    float s = 0.0f;
    int32_t r;
    for (r = 0; r < rows; ++r) s += tt_h2f(x[r * stride]);
    return s;
}

/* sums[0 .. n) of the columns x[0 .. n), n <= 8, each the portable kernel's sum. */
static inline void tt_column_sums_f16_mve(const tt_f16 *x, int32_t rows, int32_t stride, int32_t n, float *sums)
{
    int32_t k;
    if (n == 8 ? tt_column_sums8_f16_mve(x, rows, stride, 8, sums, 1)
               : tt_column_sums8_f16_mve(x, rows, stride, n, sums, 0))
        for (k = 0; k < n; ++k) sums[k] = tt_column_sum_f16(x + k, rows, stride);
}

/* ---- window sums (average pooling): sums[k] = the float32 sum from +0 of
 * x[i * row_stride + j * col_stride + k] over i < rows, then j < cols (rows, then columns, in
 * order), k < n <= 8; the caller has made sure that no operand is an inf or NaN. */
TT_F16_MVE_INLINE void tt_window_sums8_f16_mve(const tt_f16 *x, int32_t rows, int32_t cols, int32_t row_stride,
                                               int32_t col_stride, int32_t n, float *sums, const int full)
{
    const mve_pred16_t p0 = vctp32q((uint32_t)n), p1 = vctp32q((uint32_t)(n > 4 ? n - 4 : 0));
    const uint32x4_t m15 = vdupq_n_u32(0x7FFFu);
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int32_t i, j;
    for (i = 0; i < rows; ++i) {
        const tt_f16 *r = x + i * row_stride;
        for (j = 0; j < cols; ++j, r += col_stride) {
            const uint32x4_t u0 = full ? vldrhq_u32(r) : vldrhq_z_u32(r, p0);
            const uint32x4_t a0 = vandq_u32(u0, m15);
            acc0 = vaddq_f32(acc0, tt_widen_f16_mve(u0, a0));
            if (full || n > 4) {
                const uint32x4_t u1 = full ? vldrhq_u32(r + 4) : vldrhq_z_u32(r + 4, p1);
                const uint32x4_t a1 = vandq_u32(u1, m15);
                acc1 = vaddq_f32(acc1, tt_widen_f16_mve(u1, a1));
            }
        }
    }
    if (full) {
        vst1q_f32(sums, acc0);
        vst1q_f32(sums + 4, acc1);
    } else {
        vstrwq_p_f32(sums, acc0, p0);
        vstrwq_p_f32(sums + 4, acc1, p1);
    }
}

#endif   /* __ARM_FEATURE_MVE & 2 */

#endif
