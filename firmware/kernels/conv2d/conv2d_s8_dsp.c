/* int8 conv2d for the Cortex-M DSP extension, bit-exact with tt_conv2d_s8 (the contract and
 * the scratch size are in tt_kernels_simd.h).
 *
 * The work is a matrix product: rows = output pixels (their receptive fields, K = kh*kw*cin
 * values each), columns = output channels (OHWI weight rows of K). Four rows at a time are
 * widened once to int16 with in_zp subtracted, in the lane order SXTB16 gives ((v0,v2),
 * (v1,v3) for four bytes) so the weights need no reordering, and interleaved (per four K
 * values: 2 words of row 0, of row 1, of row 2, of row 3). Then each output channel: per
 * four K values one weight load, two SXTB16, two LDM of the four rows and eight SMLAD for
 * 16 MACs. The sums start from the bias where no sum can then leave int32
 * (tt_bias_fold_exact: every realistic layer), else from 0, taking the bias with one QADD
 * each after (the reference's saturating add). Little-endian targets only (all of ours). */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#define TT_ALWAYS_INLINE static inline __attribute__((always_inline))
#define ROWS 4                 /* output pixels per block */
#define GROUP_WORDS (2 * ROWS) /* int16 pairs per four K values of a block */

/* n (1..3) int8 at p, zero-padded to four. */
static inline int32_t load_s8_partial(const int8_t *p, int32_t n)
{
    int8_t t[4] = {0, 0, 0, 0};
    int32_t i;
    for (i = 0; i < n; i++)
        t[i] = p[i];
    return tt_load_s8x4(t);
}

/* k int8 values minus zp, widened: per four, the words (v0-zp, v2-zp), (v1-zp, v3-zp) at
 * dst[0], dst[1], then dst advances by GROUP_WORDS (the block's rows are interleaved); a
 * last partial four is padded with zp (so the padding counts zero). */
static void widen_row(const int8_t *src, int32_t k, int32_t zp, int32_t *dst)
{
    const int32_t neg_zp2 = tt_splat_s16x2(-zp);
    int32_t i;
    for (i = 0; i + 4 <= k; i += 4) {
        const int32_t v = tt_load_s8x4(src + i);
        dst[0] = tt_sxtab16(neg_zp2, v);
        dst[1] = tt_sxtab16_ror8(neg_zp2, v);
        dst += GROUP_WORDS;
    }
    if (i < k) {
        int8_t t[4];
        int32_t j, v;
        for (j = 0; j < 4; j++)
            t[j] = i + j < k ? src[i + j] : (int8_t)zp;
        v = tt_load_s8x4(t);
        dst[0] = tt_sxtab16(neg_zp2, v);
        dst[1] = tt_sxtab16_ror8(neg_zp2, v);
    }
}

/* s[j] += row j . w over `groups` fours of K; *p (the block's widened rows) and *w advance. */
#if TT_SIMD_HAVE_DSP && TT_SIMD_ASM
/* One four of K: LDR, 2 SXTB16, 2 LDM, 8 SMLAD (r8-r11 carry the rows' words). */
#define TT_DOT_GROUP                                    \
    "ldr     %[v], [%[w]], #4\n\t"                      \
    "ldmia   %[p]!, {r8, r9, r10, r11}\n\t"             \
    "sxtb16  %[t], %[v]\n\t"                            \
    "sxtb16  %[v], %[v], ror #8\n\t"                    \
    "smlad   %[s0], r8, %[t], %[s0]\n\t"                \
    "smlad   %[s0], r9, %[v], %[s0]\n\t"                \
    "smlad   %[s1], r10, %[t], %[s1]\n\t"               \
    "smlad   %[s1], r11, %[v], %[s1]\n\t"               \
    "ldmia   %[p]!, {r8, r9, r10, r11}\n\t"             \
    "smlad   %[s2], r8, %[t], %[s2]\n\t"                \
    "smlad   %[s2], r9, %[v], %[s2]\n\t"                \
    "smlad   %[s3], r10, %[t], %[s3]\n\t"               \
    "smlad   %[s3], r11, %[v], %[s3]\n\t"

TT_ALWAYS_INLINE void dot_rows(const int32_t **pp, const int8_t **wp, int32_t groups,
                               int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const int32_t *p = *pp;
    const int8_t *w = *wp;
    int32_t s0 = *a0, s1 = *a1, s2 = *a2, s3 = *a3, v, t;
    int32_t pairs = groups >> 1;
    /* the asm reads the rows and the weights: tell the compiler so, without a "memory"
     * clobber (which would make it reload and spill everything around the loop) */
    if (pairs) {
        __asm__("1:\n\t" TT_DOT_GROUP TT_DOT_GROUP
                "subs    %[n], %[n], #1\n\t"
                "bne     1b\n\t"
                : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [p] "+r"(p),
                  [w] "+r"(w), [n] "+r"(pairs), [v] "=&r"(v), [t] "=&r"(t)
                : "m"(*(const int32_t(*)[])p), "m"(*(const int8_t(*)[])w)
                : "r8", "r9", "r10", "r11", "cc");
    }
    if (groups & 1) {
        __asm__(TT_DOT_GROUP
                : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [p] "+r"(p),
                  [w] "+r"(w), [v] "=&r"(v), [t] "=&r"(t)
                : "m"(*(const int32_t(*)[])p), "m"(*(const int8_t(*)[])w)
                : "r8", "r9", "r10", "r11");
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    *pp = p;
    *wp = w;
}
#else
TT_ALWAYS_INLINE void dot_rows(const int32_t **pp, const int8_t **wp, int32_t groups,
                               int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const int32_t *p = *pp;
    const int8_t *w = *wp;
    int32_t i;
    for (i = 0; i < groups; i++) {
        const int32_t v = tt_load_s8x4(w);
        const int32_t v02 = tt_sxtb16(v), v13 = tt_sxtb16_ror8(v);
        *a0 = tt_smlad(p[1], v13, tt_smlad(p[0], v02, *a0));
        *a1 = tt_smlad(p[3], v13, tt_smlad(p[2], v02, *a1));
        *a2 = tt_smlad(p[5], v13, tt_smlad(p[4], v02, *a2));
        *a3 = tt_smlad(p[7], v13, tt_smlad(p[6], v02, *a3));
        p += GROUP_WORDS;
        w += 4;
    }
    *pp = p;
    *wp = w;
}
#endif

TT_ALWAYS_INLINE int32_t clamp2(int32_t v, int32_t lo, int32_t hi)
{
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return v;
}

/* Outputs of the block's `rows` (1..4) pixels for every output channel, at y (pixel
 * stride cout); a holds 4 widened rows (unused ones are copies). sat: the sums start from 0
 * and take the bias with QADD (else they start from it: tt_bias_fold_exact). */
TT_ALWAYS_INLINE void block(const int32_t *a, int32_t k, const int8_t *w, const int32_t *bias,
                            int32_t cout, const tt_rq_dsp *rq, const tt_requant *q,
                            int8_t *y, int32_t rows, const int fast, const int clamp, const int sat)
{
    const int32_t groups = k >> 2, kt = k & 3;
    const int8_t *const wend = w + (size_t)cout * k;
    const int32_t lo = q->act_min, hi = q->act_max;
    const size_t step = (size_t)cout;
    int32_t oc;
    for (oc = 0; oc < cout; oc++) {
        /* everything read before the int8 stores (which may alias anything) */
        const int32_t b = bias ? bias[oc] : 0;
        const int32_t mult = rq[oc].mult, rhi = rq[oc].hi, rsh = rq[oc].shift;
        const int32_t *p = a;
        const int8_t *wr = w + (size_t)oc * k;
        const int32_t b0 = sat ? 0 : b;
        int32_t s0 = b0, s1 = b0, s2 = b0, s3 = b0;
        dot_rows(&p, &wr, groups, &s0, &s1, &s2, &s3);
        if (kt) {
            /* the partial four: a whole-word load while it stays inside the weights (the
             * extra bytes meet zero-padded input), byte loads at the end */
            const int32_t v = wend - wr >= 4 ? tt_load_s8x4(wr) : load_s8_partial(wr, kt);
            const int32_t v02 = tt_sxtb16(v), v13 = tt_sxtb16_ror8(v);
            s0 = tt_smlad(p[1], v13, tt_smlad(p[0], v02, s0));
            s1 = tt_smlad(p[3], v13, tt_smlad(p[2], v02, s1));
            s2 = tt_smlad(p[5], v13, tt_smlad(p[4], v02, s2));
            s3 = tt_smlad(p[7], v13, tt_smlad(p[6], v02, s3));
        }
        if (sat) {
            /* the exact sums + the bias, saturating as the reference (a bias near the int32
             * limit, where starting the sums from it could wrap) */
            s0 = tt_qadd(s0, b);
            s1 = tt_qadd(s1, b);
            s2 = tt_qadd(s2, b);
            s3 = tt_qadd(s3, b);
        }
        if (fast || rsh >= 0) {
            s0 = tt_requant_dsp_fast3(s0, mult, rhi, rsh);
            s1 = tt_requant_dsp_fast3(s1, mult, rhi, rsh);
            s2 = tt_requant_dsp_fast3(s2, mult, rhi, rsh);
            s3 = tt_requant_dsp_fast3(s3, mult, rhi, rsh);
        } else {
            s0 = tt_requantize_s8(s0, q, oc);
            s1 = tt_requantize_s8(s1, q, oc);
            s2 = tt_requantize_s8(s2, q, oc);
            s3 = tt_requantize_s8(s3, q, oc);
        }
        if (clamp) {
            s0 = clamp2(s0, lo, hi);
            s1 = clamp2(s1, lo, hi);
            s2 = clamp2(s2, lo, hi);
            s3 = clamp2(s3, lo, hi);
        }
        y[oc] = (int8_t)s0;
        if (rows == ROWS) {
            y[step + oc] = (int8_t)s1;
            y[2 * step + oc] = (int8_t)s2;
            y[3 * step + oc] = (int8_t)s3;
        } else {
            if (rows > 1) y[step + oc] = (int8_t)s1;
            if (rows > 2) y[2 * step + oc] = (int8_t)s2;
        }
    }
}

void tt_conv2d_s8_dsp(const int8_t *x, const tt_dims *in,
                      const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                      const tt_geom *g, const tt_requant *q, const tt_rq_dsp *rq,
                      int8_t *y, const tt_dims *out, void *scratch)
{
    const int32_t cin = in->c, cout = out->c;
    const int32_t k = kh * kw * cin, k4 = tt_conv2d_s8_dsp_k4(kh, kw, cin);
    int32_t *rows = (int32_t *)scratch;           /* ROWS widened rows, interleaved */
    int8_t *col = (int8_t *)(rows + 2 * k4);      /* one im2col row */
    const int pointwise = kh == 1 && kw == 1 && g->stride_h == 1 && g->stride_w == 1 &&
                          g->pad_top == 0 && g->pad_left == 0 && out->h == in->h && out->w == in->w;
    const int32_t npix = out->h * out->w;
    const int fast = tt_rq_dsp_all_fast(rq, cout), clamp = tt_rq_needs_clamp(q);
    const int fold = tt_bias_fold_exact(bias, cout, k, q->in_zp);
    int32_t p, j;
    for (p = 0; p < npix; p += ROWS) {
        const int32_t n = npix - p < ROWS ? npix - p : ROWS;
        for (j = 0; j < ROWS; j++) {
            const int32_t pj = p + (j < n ? j : n - 1);   /* past the end: repeat the last */
            const int8_t *src = x + (size_t)pj * cin;
            if (!pointwise) {
                tt_im2col_s8(x, in, kh, kw, g, pj / out->w, pj % out->w, q->in_zp, col);
                src = col;
            }
            widen_row(src, k, q->in_zp, rows + 2 * j);
        }
        if (!fold) {
            /* a bias near the int32 limit: one generic instance (flags at run time) */
            block(rows, k, w, bias, cout, rq, q, y + (size_t)p * cout, n, fast, clamp, 1);
        } else if (fast) {
            if (clamp) block(rows, k, w, bias, cout, rq, q, y + (size_t)p * cout, n, 1, 1, 0);
            else       block(rows, k, w, bias, cout, rq, q, y + (size_t)p * cout, n, 1, 0, 0);
        } else {
            if (clamp) block(rows, k, w, bias, cout, rq, q, y + (size_t)p * cout, n, 0, 1, 0);
            else       block(rows, k, w, bias, cout, rq, q, y + (size_t)p * cout, n, 0, 0, 0);
        }
    }
}
