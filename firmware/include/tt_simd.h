/* tt_simd.h - the Cortex-M DSP-extension instructions the optimised int8 kernels use
 * (firmware/kernels/<op>/<op>_s8_dsp.c), as small inline functions.
 *
 * Where the compiler targets a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4,
 * M7, M33, M55) each maps to one instruction (ACLE intrinsic or inline assembly); elsewhere
 * (the host, Cortex-M0+, Xtensa) a portable C99 definition computes the very same bits, so
 * the _dsp kernels also build and run on the host, where the tests check them.
 *
 * Packed values: a 32-bit word holds two int16 lanes (bits 0-15 "bottom", 16-31 "top") or
 * four int8 lanes (byte 0 = lowest address). Accumulating instructions wrap modulo 2^32, as
 * the int32 sums of (x - zp) * w of the reference kernels do; the reference kernels add the
 * bias and the output zero point with saturation (tt_sat_add_s32): tt_qadd is that (QADD). */
#ifndef TT_SIMD_H
#define TT_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
#define TT_SIMD_HAVE_DSP 1
#include <arm_acle.h>
#else
#define TT_SIMD_HAVE_DSP 0
#endif

/* The kernels' hand-scheduled inner loops (inline assembly with many register operands)
 * only when optimising: at -O0 the compiler cannot allocate their registers (it refuses
 * the asm, or searches for a very long time); the intrinsic C versions give the same bits. */
#if defined(__OPTIMIZE__) && defined(__GNUC__)
#define TT_SIMD_ASM 1
#else
#define TT_SIMD_ASM 0
#endif

/* ---- unaligned 32-bit load / store of four int8 (one LDR / STR on ARMv7E-M) ------------- */
static inline int32_t tt_load_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void tt_store_s8x4(int8_t *p, int32_t v)
{
    memcpy(p, &v, 4);
}

#if TT_SIMD_HAVE_DSP

/* (sext(x.b0), sext(x.b2)) as two int16 lanes */
static inline int32_t tt_sxtb16(int32_t x) { return (int32_t)__sxtb16((uint32_t)x); }
/* (sext(x.b1), sext(x.b3)): SXTB16 with ROR #8 */
static inline int32_t tt_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* a + (sext(x.b0), sext(x.b2)), lane-wise modulo 2^16 */
static inline int32_t tt_sxtab16(int32_t a, int32_t x) { return (int32_t)__sxtab16((uint32_t)a, (uint32_t)x); }
/* a + (sext(x.b1), sext(x.b3)) */
static inline int32_t tt_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
/* acc + a.bot * b.bot + a.top * b.top */
static inline int32_t tt_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)__smlad((uint32_t)a, (uint32_t)b, (uint32_t)acc);
}
/* acc + a.bot * b.bot */
static inline int32_t tt_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)__smlabb((uint32_t)a, (uint32_t)b, (uint32_t)acc);
}
/* acc + a.top * b.top */
static inline int32_t tt_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)__smlatt((uint32_t)a, (uint32_t)b, (uint32_t)acc);
}
/* lane-wise a + b of two int16 pairs, modulo 2^16 (SADD16) */
static inline int32_t tt_sadd16(int32_t a, int32_t b) { return (int32_t)__sadd16((int16x2_t)a, (int16x2_t)b); }
/* clamp to int8: SSAT #8 */
static inline int32_t tt_ssat8(int32_t x) { return __ssat(x, 8); }
/* a + b saturated to int32: QADD (tt_sat_add_s32's result in one instruction) */
static inline int32_t tt_qadd(int32_t a, int32_t b) { return __qadd(a, b); }
/* {hi:lo} += a * b, signed 64-bit (SMLAL) */
static inline void tt_smlal(uint32_t *lo, int32_t *hi, int32_t a, int32_t b)
{
    __asm__("smlal %0, %1, %2, %3" : "+r"(*lo), "+r"(*hi) : "r"(a), "r"(b));
}
/* Per byte lane: max(a, b) and min(a, b) of packed int8 (SSUB8 sets GE, SEL picks). */
static inline int32_t tt_max_s8x4(int32_t a, int32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (int32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
}
static inline int32_t tt_min_s8x4(int32_t a, int32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (int32_t)__sel((uint8x4_t)b, (uint8x4_t)a);
}

#else /* portable C: the same bits */

static inline int32_t tt_s16lanes(int32_t bot, int32_t top)
{
    return (int32_t)(((uint32_t)top << 16) | ((uint32_t)bot & 0xFFFFu));
}
static inline int32_t tt_lane_bot(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu); }
static inline int32_t tt_lane_top(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16); }
static inline int32_t tt_byte(int32_t x, int k) { return (int32_t)(int8_t)(uint8_t)((uint32_t)x >> (8 * k)); }

static inline int32_t tt_sxtb16(int32_t x) { return tt_s16lanes(tt_byte(x, 0), tt_byte(x, 2)); }
static inline int32_t tt_sxtb16_ror8(int32_t x) { return tt_s16lanes(tt_byte(x, 1), tt_byte(x, 3)); }
static inline int32_t tt_sxtab16(int32_t a, int32_t x)
{
    return tt_s16lanes(tt_lane_bot(a) + tt_byte(x, 0), tt_lane_top(a) + tt_byte(x, 2));
}
static inline int32_t tt_sxtab16_ror8(int32_t a, int32_t x)
{
    return tt_s16lanes(tt_lane_bot(a) + tt_byte(x, 1), tt_lane_top(a) + tt_byte(x, 3));
}
static inline int32_t tt_smlad(int32_t a, int32_t b, int32_t acc)
{
    uint32_t p = (uint32_t)(tt_lane_bot(a) * tt_lane_bot(b)) + (uint32_t)(tt_lane_top(a) * tt_lane_top(b));
    return (int32_t)((uint32_t)acc + p);
}
static inline int32_t tt_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tt_lane_bot(a) * tt_lane_bot(b)));
}
static inline int32_t tt_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tt_lane_top(a) * tt_lane_top(b)));
}
static inline int32_t tt_sadd16(int32_t a, int32_t b)
{
    return tt_s16lanes(tt_lane_bot(a) + tt_lane_bot(b), tt_lane_top(a) + tt_lane_top(b));
}
static inline int32_t tt_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
static inline int32_t tt_qadd(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + (int64_t)b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}
static inline void tt_smlal(uint32_t *lo, int32_t *hi, int32_t a, int32_t b)
{
    uint64_t acc = ((uint64_t)(uint32_t)*hi << 32) | *lo;
    acc += (uint64_t)((int64_t)a * (int64_t)b);
    *lo = (uint32_t)acc;
    *hi = (int32_t)(uint32_t)(acc >> 32);
}
static inline int32_t tt_max_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    int k;
    for (k = 0; k < 4; k++) {
        int32_t m = tt_byte(a, k) >= tt_byte(b, k) ? tt_byte(a, k) : tt_byte(b, k);
        r |= ((uint32_t)m & 0xFFu) << (8 * k);
    }
    return (int32_t)r;
}
static inline int32_t tt_min_s8x4(int32_t a, int32_t b)
{
    uint32_t r = 0;
    int k;
    for (k = 0; k < 4; k++) {
        int32_t m = tt_byte(a, k) >= tt_byte(b, k) ? tt_byte(b, k) : tt_byte(a, k);
        r |= ((uint32_t)m & 0xFFu) << (8 * k);
    }
    return (int32_t)r;
}

#endif /* TT_SIMD_HAVE_DSP */

/* Four int8 in the low bytes of four int32 (already in [-128, 127]) packed into one word,
 * lowest address first (three BFI on ARMv7-M and later). */
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
static inline int32_t tt_pack_s8x4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    __asm__("bfi %0, %1, #8, #8\n\t"
            "bfi %0, %2, #16, #8\n\t"
            "bfi %0, %3, #24, #8"
            : "+&r"(a) : "r"(b), "r"(c), "r"(d));
    return a;
}
#else
static inline int32_t tt_pack_s8x4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    return (int32_t)(((uint32_t)a & 0xFFu) | (((uint32_t)b & 0xFFu) << 8) |
                     (((uint32_t)c & 0xFFu) << 16) | ((uint32_t)d << 24));
}
#endif

/* A byte repeated in the four lanes of a word. */
static inline int32_t tt_splat_s8x4(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xFFu) * 0x01010101u);
}

/* A value repeated in both int16 lanes. */
static inline int32_t tt_splat_s16x2(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xFFFFu) * 0x00010001u);
}

#endif
