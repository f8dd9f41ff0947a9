/* int8 conv2d for Helium (MVE, Cortex-M55), bit-exact with tt_conv2d_s8 (contract and
 * scratch size in tt_kernels_simd.h).
 *
 * A matrix product like the _dsp variant: rows = output pixels (K = kh*kw*cin values:
 * the input itself for a 1x1 stride-1 unpadded conv, an im2col copy otherwise, padded taps
 * holding in_zp), columns = output channels. The input zero point is folded at run time:
 * sum((x - zp) * w) = sum(x * w) - zp * sum(w) modulo 2^32 (exact: the true sum fits an
 * int32), with sum(w) per output channel computed once per call into the scratch (weights
 * change in training, so nothing is prepared offline). The bias is folded in too (the sums
 * start from bias - zp * sum(w)) where tt_bias_fold_exact proves no sum can then leave
 * int32: the reference's saturating add exactly; a channel it cannot prove (a bias near the
 * int32 limit: MCUNet's first layer has them) gets its one output byte where its output is
 * one byte (tt_channel_output_constant), else the call runs the reference kernel. Four pixels x one output channel per step: per 16 K
 * values one weight load, four input loads, four VMLADAVA (64 MACs); the last partial 16 is
 * tail-predicated. The four results are requantised as one vector (VQRDMULH, the rounding
 * shift with gemmlowp's fix-up, out_zp added saturating) and scattered to the four pixels. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

#define ROWS 4

/* TFLite's MultiplyByQuantizedMultiplier on four lanes, one channel's mult / shift, then
 * + out_zp and the activation clamp. */
static inline int32x4_t requant_lanes(int32x4_t acc, int32_t mult, int32_t shift, int32_t out_zp,
                                      int32x4_t lo, int32x4_t hi)
{
    int32x4_t z;
    if (shift > 0) acc = vshlq_r_s32(acc, shift);
    z = vqrdmulhq_n_s32(acc, mult);
    if (shift < 0) {
        /* round half away from zero: negative values take one off first (gemmlowp) */
        z = vqaddq_s32(z, vshrq_n_s32(z, 31));
        z = vrshlq_n_s32(z, shift);
    }
    z = vqaddq_n_s32(z, out_zp);   /* saturating, as the reference (no right shift: z may be near the limit) */
    return vminq_s32(vmaxq_s32(z, lo), hi);
}

/* Requantisation of four lanes of one channel, its shift's sign known (mode: 1 left shift,
 * 0 none, -1 right shift). */
static inline __attribute__((always_inline)) int32x4_t requant_mode(int32x4_t acc, int32_t mult, int32_t shift,
                                                                    int32_t out_zp, int32x4_t lo, int32x4_t hi,
                                                                    const int mode)
{
    int32x4_t z;
    if (mode > 0) acc = vshlq_r_s32(acc, shift);
    z = vqrdmulhq_n_s32(acc, mult);
    if (mode < 0) z = vrshlq_n_s32(vqaddq_s32(z, vshrq_n_s32(z, 31)), shift);
    return vminq_s32(vmaxq_s32(vqaddq_n_s32(z, out_zp), lo), hi);
}

/* The dot products of four rows (a0..a3, k bytes) with one weight row w, each from s.
 * The 16-byte steps run in assembly: VMLADAVA needs even accumulator registers and the
 * loop needs 5 pointers + 4 accumulators + the loop counter, more than the compiler keeps
 * in registers around the rest of the kernel (it spilled them to the stack every step).
 * It reads the rows and the weights: "memory" says so (no register is left to pass them as
 * memory operands). */
#if TT_SIMD_ASM
static inline __attribute__((always_inline)) int32x4_t dot4(const int8_t *a0, const int8_t *a1,
                                                            const int8_t *a2, const int8_t *a3,
                                                            const int8_t *w, int32_t k, int32_t s)
{
    const int32_t tail = k & 15;
    int32x4_t acc;
    register int32_t s0 __asm__("r0") = s;
    register int32_t s1 __asm__("r2") = s;
    register int32_t s2 __asm__("r4") = s;
    register int32_t s3 __asm__("r6") = s;
    register const int8_t *p0 __asm__("r1") = a0;
    register const int8_t *p1 __asm__("r3") = a1;
    register const int8_t *p2 __asm__("r5") = a2;
    register const int8_t *p3 __asm__("r8") = a3;
    register const int8_t *pw __asm__("r9") = w;
    register int32_t n __asm__("lr") = k >> 4;
    __asm__("wls     lr, lr, 2f\n"
            "1:\n\t"
            "vldrb.8 q0, [%[pw]], #16\n\t"
            "vldrb.8 q1, [%[p0]], #16\n\t"
            "vmladava.s8 %[s0], q1, q0\n\t"
            "vldrb.8 q1, [%[p1]], #16\n\t"
            "vmladava.s8 %[s1], q1, q0\n\t"
            "vldrb.8 q1, [%[p2]], #16\n\t"
            "vmladava.s8 %[s2], q1, q0\n\t"
            "vldrb.8 q1, [%[p3]], #16\n\t"
            "vmladava.s8 %[s3], q1, q0\n\t"
            "le      lr, 1b\n"
            "2:"
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [p0] "+r"(p0), [p1] "+r"(p1),
              [p2] "+r"(p2), [p3] "+r"(p3), [pw] "+r"(pw), "+r"(n)
            :
            : "d0", "d1", "d2", "d3", "memory");
    if (tail) {
        const mve_pred16_t pt = vctp8q((uint32_t)tail);
        const int8x16_t wv = vldrbq_z_s8(pw, pt);
        s0 = vmladavaq_s8(s0, vldrbq_z_s8(p0, pt), wv);
        s1 = vmladavaq_s8(s1, vldrbq_z_s8(p1, pt), wv);
        s2 = vmladavaq_s8(s2, vldrbq_z_s8(p2, pt), wv);
        s3 = vmladavaq_s8(s3, vldrbq_z_s8(p3, pt), wv);
    }
    acc = vdupq_n_s32(s0);
    acc = vsetq_lane_s32(s1, acc, 1);
    acc = vsetq_lane_s32(s2, acc, 2);
    return vsetq_lane_s32(s3, acc, 3);
}
#else
static inline __attribute__((always_inline)) int32x4_t dot4(const int8_t *a0, const int8_t *a1,
                                                            const int8_t *a2, const int8_t *a3,
                                                            const int8_t *w, int32_t k, int32_t s)
{
    const int32_t tail = k & 15;
    int32_t s0 = s, s1 = s, s2 = s, s3 = s, i;
    int32x4_t acc;
    for (i = k >> 4; i > 0; i--) {
        const int8x16_t wv = vldrbq_s8(w);
        s0 = vmladavaq_s8(s0, vldrbq_s8(a0), wv);
        s1 = vmladavaq_s8(s1, vldrbq_s8(a1), wv);
        s2 = vmladavaq_s8(s2, vldrbq_s8(a2), wv);
        s3 = vmladavaq_s8(s3, vldrbq_s8(a3), wv);
        w += 16;
        a0 += 16;
        a1 += 16;
        a2 += 16;
        a3 += 16;
    }
    if (tail) {
        const mve_pred16_t pt = vctp8q((uint32_t)tail);
        const int8x16_t wv = vldrbq_z_s8(w, pt);
        s0 = vmladavaq_s8(s0, vldrbq_z_s8(a0, pt), wv);
        s1 = vmladavaq_s8(s1, vldrbq_z_s8(a1, pt), wv);
        s2 = vmladavaq_s8(s2, vldrbq_z_s8(a2, pt), wv);
        s3 = vmladavaq_s8(s3, vldrbq_z_s8(a3, pt), wv);
    }
    acc = vdupq_n_s32(s0);
    acc = vsetq_lane_s32(s1, acc, 1);
    acc = vsetq_lane_s32(s2, acc, 2);
    return vsetq_lane_s32(s3, acc, 3);
}
#endif

/* 1x1 stride-1 conv, one output channel over the first npix4 (a multiple of 4) pixels
 * (rows of k = cin bytes), the channel's parameters held in registers. */
static inline __attribute__((always_inline)) void pointwise_channel(
    const int8_t *x, int32_t npix4, int32_t k, const int8_t *w, int32_t b, int32_t mult, int32_t shift,
    int32_t out_zp, int32x4_t lo, int32x4_t hi, uint32x4_t offs, int8_t *y, int32_t cout, const int mode)
{
    const int8_t *a = x;
    const size_t step = (size_t)k;
    int32_t p;
    for (p = 0; p < npix4; p += ROWS) {
        int32x4_t acc = dot4(a, a + step, a + 2 * step, a + 3 * step, w, k, b);
        acc = requant_mode(acc, mult, shift, out_zp, lo, hi, mode);
        vstrbq_scatter_offset_s32(y, offs, acc);
        a += 4 * step;
        y += 4 * (size_t)cout;
    }
}

/* The channels whose bias the proof cannot fold (tt_bias_fold_exact): 1 if each has one
 * output byte (tt_channel_output_constant; the main loops compute them wrongly, with the
 * bias folded modulo 2^32, and fill_constant_channels overwrites them). Out of line: the
 * main path's registers stay as they are. */
static __attribute__((noinline)) int32_t bias_channels_constant(const int8_t *w, int32_t k, const int32_t *bias,
                                                                int32_t cout, const tt_requant *q)
{
    int32_t oc;
    int8_t v;
    for (oc = 0; oc < cout; oc++)
        if (!tt_bias_fold_exact(bias + oc, 1, k, q->in_zp) &&
            !tt_channel_output_constant(w + (size_t)oc * k, k, bias[oc], q->in_zp, q, oc, &v))
            return 0;
    return 1;
}

static __attribute__((noinline)) void fill_constant_channels(const int8_t *w, int32_t k, const int32_t *bias,
                                                             int32_t cout, const tt_requant *q, int8_t *y,
                                                             int32_t npix)
{
    int32_t oc, p;
    int8_t v;
    for (oc = 0; oc < cout; oc++)
        if (!tt_bias_fold_exact(bias + oc, 1, k, q->in_zp) &&
            tt_channel_output_constant(w + (size_t)oc * k, k, bias[oc], q->in_zp, q, oc, &v))
            for (p = 0; p < npix; p++) y[(size_t)p * cout + oc] = v;
}

void tt_conv2d_s8_mve(const int8_t *x, const tt_dims *in,
                      const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                      const tt_geom *g, const tt_requant *q,
                      int8_t *y, const tt_dims *out, void *scratch)
{
    const int32_t cin = in->c, cout = out->c;
    const int32_t k = kh * kw * cin, k4 = tt_conv2d_s8_mve_k16(kh, kw, cin);
    int32_t *wsum = (int32_t *)scratch;                      /* cout */
    int8_t *col = (int8_t *)(wsum + ((cout + 3) & ~3));      /* ROWS im2col rows of k4 */
    const int pointwise = kh == 1 && kw == 1 && g->stride_h == 1 && g->stride_w == 1 &&
                          g->pad_top == 0 && g->pad_left == 0 && out->h == in->h && out->w == in->w;
    const int32_t npix = out->h * out->w;
    const int32_t full = k & ~15, tail = k & 15;
    const mve_pred16_t ptail = vctp8q((uint32_t)tail);
    const int32x4_t lo = vdupq_n_s32(q->act_min), hi = vdupq_n_s32(q->act_max);
    const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)cout);   /* 0, cout, 2cout, 3cout */
    int32_t oc, p, j, i;
    if (!tt_bias_fold_exact(bias, cout, k, q->in_zp) && !bias_channels_constant(w, k, bias, cout, q)) {
        /* a bias near the int32 limit whose channel's output is not one byte (never a
         * trained bias: they stay within +-2^30, where the proof holds for every layer whose
         * bias may be trained): the reference. A saturating path of our own here (VQADD of
         * the bias, as conv2d_s8_dsp.c has) made gcc allocate the common path's registers
         * worse: +4% on a 1x1 layer. */
        tt_conv2d_s8(x, in, w, bias, kh, kw, g, q, y, out);
        return;
    }

    for (oc = 0; oc < cout; oc++) {
        const int8_t *wr = w + (size_t)oc * k;
        int32_t s = 0;
        for (i = 0; i < full; i += 16)
            s = vaddvaq_s8(s, vldrbq_s8(wr + i));
        if (tail) s = vaddvaq_s8(s, vldrbq_z_s8(wr + full, ptail));
        /* bias - zp * sum(w): sum x w + this is bias + sum (x - zp) w exactly (modulo 2^32;
         * the true value fits an int32: tt_bias_fold_exact) */
        wsum[oc] = (int32_t)((uint32_t)(bias ? bias[oc] : 0) - (uint32_t)q->in_zp * (uint32_t)s);
    }

    p = 0;
    if (pointwise) {
        const int32_t npix4 = npix & ~(ROWS - 1);
        for (oc = 0; oc < cout && npix4; oc++) {
            const int32_t shift = q->shift[oc], mult = q->multiplier[oc];
            const int8_t *wr = w + (size_t)oc * k;
            if (shift < 0)
                pointwise_channel(x, npix4, k, wr, wsum[oc], mult, shift, q->out_zp, lo, hi, offs, y + oc, cout, -1);
            else if (shift > 0)
                pointwise_channel(x, npix4, k, wr, wsum[oc], mult, shift, q->out_zp, lo, hi, offs, y + oc, cout, 1);
            else
                pointwise_channel(x, npix4, k, wr, wsum[oc], mult, shift, q->out_zp, lo, hi, offs, y + oc, cout, 0);
        }
        p = npix4;   /* the last 1-3 pixels: below, as rows of the input itself */
    }
    for (; p < npix; p += ROWS) {
        const int32_t n = npix - p < ROWS ? npix - p : ROWS;
        const int8_t *r[ROWS];
        for (j = 0; j < ROWS; j++) {
            const int32_t pj = p + (j < n ? j : n - 1);     /* past the end: repeat the last */
            if (pointwise) {
                r[j] = x + (size_t)pj * cin;
            } else {
                tt_im2col_s8(x, in, kh, kw, g, pj / out->w, pj % out->w, q->in_zp, col + (size_t)j * k4);
                r[j] = col + (size_t)j * k4;
            }
        }
        for (oc = 0; oc < cout; oc++) {
            int32x4_t acc = dot4(r[0], r[1], r[2], r[3], w + (size_t)oc * k, k, wsum[oc]);
            acc = requant_lanes(acc, q->multiplier[oc], q->shift[oc], q->out_zp, lo, hi);
            if (n == ROWS)
                vstrbq_scatter_offset_s32(y + (size_t)p * cout + oc, offs, acc);
            else
                vstrbq_scatter_offset_p_s32(y + (size_t)p * cout + oc, offs, acc, vctp32q((uint32_t)n));
        }
    }
    /* the proof again (cout compares), rather than a flag live across the loops above */
    if (!tt_bias_fold_exact(bias, cout, k, q->in_zp))
        fill_constant_channels(w, k, bias, cout, q, y, npix);
}

#endif /* __ARM_FEATURE_MVE */
