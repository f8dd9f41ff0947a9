/* Half precision (IEEE 754 binary16) as a storage format: tensors of dtype float16 are
 * arrays of uint16_t holding the bits; the portable _f16 kernels convert each operand to
 * float, compute in float (every multiply and add rounded to float, in the order the kernel
 * documents; -ffp-contract=off) and round each result to half once, to nearest even.
 * tinytrain's numpy references (tinytrain/ops/f16.py) compute the same bits.
 *
 * The conversions: the compiler's _Float16 where it has one (GCC on x86-64, Cortex-M55:
 * the FPU's VCVTB), otherwise exact integer code (Cortex-M4/M7 without -mfp16-format).
 * Both round to nearest even, handle subnormals, infinities and NaN (quiet). */
#ifndef TT_F16_H
#define TT_F16_H

#include <stdint.h>
#include <string.h>
#include "tt_types.h"

#if defined(__FLT16_MANT_DIG__) && !defined(TT_F16_SOFT)
__extension__ typedef _Float16 tt_half_native;     /* __extension__: accepted with -Wpedantic */

static inline float tt_h2f(tt_f16 h)
{
    tt_half_native v;
    memcpy(&v, &h, 2);
    return (float)v;
}

static inline tt_f16 tt_f2h(float f)
{
    tt_half_native v = (tt_half_native)f;
    tt_f16 h;
    memcpy(&h, &v, 2);
    return h;
}
#else
static inline float tt_h2f(tt_f16 h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    float f;
    if (exp == 0x1Fu) {
        bits = sign | 0x7F800000u | (man << 13) | (man ? 0x00400000u : 0u);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {                                   /* subnormal: normalise */
        exp = 113u;
        while (!(man & 0x400u)) {
            man <<= 1;
            --exp;
        }
        bits = sign | (exp << 23) | ((man & 0x3FFu) << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

static inline tt_f16 tt_f2h(float f)
{
    uint32_t bits, sign, absb, exp, man, half, rem, shift;
    memcpy(&bits, &f, 4);
    sign = (bits >> 16) & 0x8000u;
    absb = bits & 0x7FFFFFFFu;
    if (absb >= 0x7F800000u)                   /* inf, NaN (quiet) */
        return (tt_f16)(sign | 0x7C00u | (absb > 0x7F800000u ? 0x200u | ((absb >> 13) & 0x3FFu) : 0u));
    if (absb >= 0x477FF000u)                   /* rounds to >= 65520: overflow */
        return (tt_f16)(sign | 0x7C00u);
    exp = absb >> 23;
    if (exp >= 113u) {                          /* normal half */
        half = ((exp - 112u) << 10) | ((absb >> 13) & 0x3FFu);
        rem = absb & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
        return (tt_f16)(sign | half);
    }
    if (exp < 102u) return (tt_f16)sign;       /* below half the smallest subnormal */
    man = (absb & 0x7FFFFFu) | 0x800000u;      /* subnormal half: man >> (126 - exp) */
    shift = 126u - exp;
    half = man >> shift;
    rem = man & ((1u << shift) - 1u);
    if (rem > (1u << (shift - 1)) || (rem == (1u << (shift - 1)) && (half & 1u))) ++half;
    return (tt_f16)(sign | half);
}
#endif

/* Fused activation of a float value before its rounding to half: 0 none, 1 relu, 2 relu6. */
static inline float tt_act_f16(float v, int32_t act)
{
    if (act == 0) return v;
    if (v < 0.0f) v = 0.0f;
    if (act == 2 && v > 6.0f) v = 6.0f;
    return v;
}

#endif
