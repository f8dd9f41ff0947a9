/* int8 depthwise conv2d for the Cortex-M DSP extension, bit-exact with
 * tt_depthwise_conv2d_s8 (contract in tt_kernels_simd.h), and the row building block the
 * in-place and fused _dsp variants share.
 *
 * Channels go four at a time (HWC: one 32-bit load holds them). Per tap: one load of the
 * four inputs, two SXTAB16 (widened, in_zp subtracted: lanes (c0,c2) and (c1,c3)), one
 * double-word load of the group's weights, widened once per group into the lane order
 * SMLABB / SMLATT want, and four multiply-accumulates. Border pixels only visit their valid
 * taps (ranges computed per pixel, no per-tap test); interior pixels of a 3-wide kernel run
 * the taps unrolled (from -in_zp * sum(w) instead of widening with in_zp subtracted). The
 * sums start from the bias where no sum can then leave int32 (tt_bias_fold_exact, per group:
 * every realistic layer), else from 0 and take the bias with QADD per output (the
 * reference's saturating add); the four outputs are requantised (tt_requant_dsp), packed
 * and stored as one word. A last group of 1-3 channels loads and stores byte by byte. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#define TT_ALWAYS_INLINE static inline __attribute__((always_inline))

static inline int32_t load_s8_partial(const int8_t *p, int32_t n)
{
    int8_t t[4] = {0, 0, 0, 0};
    int32_t i;
    for (i = 0; i < n; i++)
        t[i] = p[i];
    return tt_load_s8x4(t);
}

void tt_dw_group_prepare_dsp(tt_dw_group_dsp *grp, const int8_t *w, const int32_t *bias,
                             const tt_rq_dsp *rq, int32_t in_zp, int32_t c, int32_t n, int32_t taps,
                             int32_t ch)
{
    int32_t sum02 = 0, sum13 = 0;   /* the weights' sums, int16 lanes (|sum| <= 49 * 128) */
    int32_t wsum[4];
    int32_t t, j;
    grp->sat = !tt_bias_fold_exact(bias ? bias + c : NULL, n, taps, in_zp);
    for (t = 0; t < taps; t++) {
        const int8_t *wp = w + (size_t)t * ch + c;
        const int32_t v = n == 4 ? tt_load_s8x4(wp) : load_s8_partial(wp, n);
        const int32_t v02 = tt_sxtb16(v), v13 = tt_sxtb16_ror8(v);
        grp->w[2 * t] = v02;
        grp->w[2 * t + 1] = v13;
        sum02 = tt_sadd16(sum02, v02);
        sum13 = tt_sadd16(sum13, v13);
    }
    wsum[0] = (int16_t)(uint16_t)((uint32_t)sum02 & 0xFFFFu);
    wsum[2] = (int16_t)(uint16_t)((uint32_t)sum02 >> 16);
    wsum[1] = (int16_t)(uint16_t)((uint32_t)sum13 & 0xFFFFu);
    wsum[3] = (int16_t)(uint16_t)((uint32_t)sum13 >> 16);
    for (j = 0; j < 4; j++) {
        const int32_t cj = j < n ? c + j : c;
        grp->bias[j] = bias ? bias[cj] : 0;
        grp->start[j] = grp->sat ? 0 : grp->bias[j];
        /* all taps inside: sum (x - zp) w = sum x w - zp sum w (exact modulo 2^32, and the
         * true sum fits an int32, with the bias too unless sat) */
        grp->start_all[j] = (int32_t)((uint32_t)grp->start[j] - (uint32_t)in_zp * (uint32_t)wsum[j]);
        grp->mult[j] = rq[cj].mult;
        grp->hi[j] = rq[cj].hi;
        grp->shift[j] = rq[cj].shift;
        grp->chan[j] = cj;
    }
    grp->c = c;
    grp->n = n;
}

/* ntaps taps of a row: input at p (advancing by step), weights at w (2 words per tap). */
TT_ALWAYS_INLINE void taps(const int8_t *p, int32_t step, const int32_t *w, int32_t ntaps,
                           int32_t nzp2, int32_t n, const int full,
                           int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t t;
    for (t = 0; t < ntaps; t++) {
        const int32_t v = full ? tt_load_s8x4(p) : load_s8_partial(p, n);
        const int32_t x02 = tt_sxtab16(nzp2, v), x13 = tt_sxtab16_ror8(nzp2, v);
        const int32_t w02 = w[0], w13 = w[1];
        *a0 = tt_smlabb(x02, w02, *a0);
        *a2 = tt_smlatt(x02, w02, *a2);
        *a1 = tt_smlabb(x13, w13, *a1);
        *a3 = tt_smlatt(x13, w13, *a3);
        p += step;
        w += 2;
    }
}

TT_ALWAYS_INLINE int32_t rq1(int32_t acc, const tt_dw_group_dsp *grp, int32_t j,
                             const tt_requant *q, const int fast)
{
    if (fast || grp->shift[j] >= 0)
        return tt_requant_dsp_fast3(acc, grp->mult[j], grp->hi[j], grp->shift[j]);
    return tt_requantize_s8(acc, q, grp->chan[j]);
}

/* One tap of a full group: 4 channels at p, weights w[0..1]. */
TT_ALWAYS_INLINE void tap(const int8_t *p, const int32_t *w, int32_t nzp2,
                          int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const int32_t v = tt_load_s8x4(p);
    const int32_t x02 = tt_sxtab16(nzp2, v), x13 = tt_sxtab16_ror8(nzp2, v);
    const int32_t w02 = w[0], w13 = w[1];
    *a0 = tt_smlabb(x02, w02, *a0);
    *a2 = tt_smlatt(x02, w02, *a2);
    *a1 = tt_smlabb(x13, w13, *a1);
    *a3 = tt_smlatt(x13, w13, *a3);
}

/* Requantise, clamp, store the four sums of a pixel (sat: add the bias first, saturating as
 * the reference). */
TT_ALWAYS_INLINE void put(const tt_dw_group_dsp *grp, const tt_requant *q, int8_t *dst,
                          int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t lo4, int32_t hi4,
                          const int full, const int fast, const int clamp, const int sat)
{
    int32_t v, j;
    if (sat) {
        a0 = tt_qadd(a0, grp->bias[0]);
        a1 = tt_qadd(a1, grp->bias[1]);
        a2 = tt_qadd(a2, grp->bias[2]);
        a3 = tt_qadd(a3, grp->bias[3]);
    }
    a0 = rq1(a0, grp, 0, q, fast);
    a1 = rq1(a1, grp, 1, q, fast);
    a2 = rq1(a2, grp, 2, q, fast);
    a3 = rq1(a3, grp, 3, q, fast);
    v = tt_pack_s8x4(a0, a1, a2, a3);
    if (clamp) v = tt_min_s8x4(tt_max_s8x4(v, lo4), hi4);
    if (full) {
        tt_store_s8x4(dst, v);
    } else {
        for (j = 0; j < grp->n; j++)
            dst[j] = (int8_t)(v >> (8 * j));
    }
}

/* One output pixel of the group: taps [kx0, kx1) of every listed row. */
TT_ALWAYS_INLINE void pixel(const tt_dw_group_dsp *grp, const tt_dw_rows *r, int32_t ix0,
                            int32_t kx0, int32_t kx1, int32_t kw, int32_t dil_w,
                            const tt_requant *q, int8_t *dst, int32_t nzp2, int32_t lo4, int32_t hi4,
                            const int full, const int fast, const int clamp, const int sat)
{
    int32_t a0 = grp->start[0], a1 = grp->start[1], a2 = grp->start[2], a3 = grp->start[3];
    const int32_t step = r->stride * dil_w;
    int32_t j;
    for (j = 0; j < r->n; j++) {
        const int8_t *p = r->row[j] + (ix0 + kx0 * dil_w) * r->stride;
        const int32_t *w = grp->w + 2 * (r->ky[j] * kw + kx0);
        taps(p, step, w, kx1 - kx0, nzp2, grp->n, full, &a0, &a1, &a2, &a3);
    }
    put(grp, q, dst, a0, a1, a2, a3, lo4, hi4, full, fast, clamp, sat);
}

/* The nine taps of a 3x3 window whose taps are all inside: rows at p0, p1, p2 (pixel
 * stride s), weights w (18 words); the accumulators start from start_all (in_zp folded in),
 * so the inputs are widened without subtracting it. */
#if TT_SIMD_HAVE_DSP && TT_SIMD_ASM
#define TT_DW_TAP(P, OFF, WOFF)                                   \
    "ldr     %[v], [" P OFF "]\n\t"                              \
    "ldrd    %[w0], %[w1], [%[w], #" WOFF "]\n\t"                \
    "sxtb16  %[x], %[v]\n\t"                                     \
    "sxtb16  %[v], %[v], ror #8\n\t"                             \
    "smlabb  %[a0], %[x], %[w0], %[a0]\n\t"                      \
    "smlatt  %[a2], %[x], %[w0], %[a2]\n\t"                      \
    "smlabb  %[a1], %[v], %[w1], %[a1]\n\t"                      \
    "smlatt  %[a3], %[v], %[w1], %[a3]\n\t"
#define TT_DW_ROW3(P, W0, W1, W2) \
    TT_DW_TAP(P, "", W0) TT_DW_TAP(P, ", %[s]", W1) TT_DW_TAP(P, ", %[s], lsl #1", W2)

TT_ALWAYS_INLINE void taps3x3(const int8_t *p0, const int8_t *p1, const int8_t *p2, int32_t s,
                              const int32_t *w, int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t v, x, w0, w1;
    __asm__(TT_DW_ROW3("%[p0]", "0", "8", "16") TT_DW_ROW3("%[p1]", "24", "32", "40")
            TT_DW_ROW3("%[p2]", "48", "56", "64")
            : [a0] "+r"(*a0), [a1] "+r"(*a1), [a2] "+r"(*a2), [a3] "+r"(*a3),
              [v] "=&r"(v), [x] "=&r"(x), [w0] "=&r"(w0), [w1] "=&r"(w1)
            : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2), [s] "r"(s), [w] "r"(w),
              "m"(*(const int8_t(*)[])p0), "m"(*(const int8_t(*)[])p1), "m"(*(const int8_t(*)[])p2),
              "m"(*(const int32_t(*)[18])w));
}
#else
static inline void tap_nozp(const int8_t *p, const int32_t *w, int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const int32_t v = tt_load_s8x4(p);
    const int32_t x02 = tt_sxtb16(v), x13 = tt_sxtb16_ror8(v);
    *a0 = tt_smlabb(x02, w[0], *a0);
    *a2 = tt_smlatt(x02, w[0], *a2);
    *a1 = tt_smlabb(x13, w[1], *a1);
    *a3 = tt_smlatt(x13, w[1], *a3);
}
TT_ALWAYS_INLINE void taps3x3(const int8_t *p0, const int8_t *p1, const int8_t *p2, int32_t s,
                              const int32_t *w, int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const int8_t *p[3];
    int32_t ky, kx;
    p[0] = p0;
    p[1] = p1;
    p[2] = p2;
    for (ky = 0; ky < 3; ky++)
        for (kx = 0; kx < 3; kx++)
            tap_nozp(p[ky] + kx * s, w + 2 * (3 * ky + kx), a0, a1, a2, a3);
}
#endif

/* Interior pixels [ox0, ox1) of an output row whose three input rows all exist, 3x3 kernel,
 * no horizontal dilation, four channels. */
TT_ALWAYS_INLINE void interior3x3(const tt_dw_group_dsp *grp, const tt_dw_rows *r, int32_t ox0,
                                  int32_t ox1, const tt_geom *g, const tt_requant *q, int8_t *y,
                                  int32_t out_stride, int32_t lo4, int32_t hi4,
                                  const int fast, const int clamp, const int sat)
{
    const int32_t s = r->stride, adv = s * g->stride_w;
    const int8_t *p0 = r->row[0] + (ox0 * g->stride_w - g->pad_left) * s;
    const int8_t *p1 = r->row[1] + (ox0 * g->stride_w - g->pad_left) * s;
    const int8_t *p2 = r->row[2] + (ox0 * g->stride_w - g->pad_left) * s;
    int8_t *dst = y + (size_t)ox0 * out_stride;
    int32_t ox;
    for (ox = ox0; ox < ox1; ox++) {
        int32_t a0 = grp->start_all[0], a1 = grp->start_all[1], a2 = grp->start_all[2], a3 = grp->start_all[3];
        taps3x3(p0, p1, p2, s, grp->w, &a0, &a1, &a2, &a3);
        put(grp, q, dst, a0, a1, a2, a3, lo4, hi4, 1, fast, clamp, sat);
        p0 += adv;
        p1 += adv;
        p2 += adv;
        dst += out_stride;
    }
}

TT_ALWAYS_INLINE void row(const tt_dw_group_dsp *grp, const tt_dw_rows *r, int32_t in_w, int32_t kh,
                          int32_t kw, const tt_geom *g, const tt_requant *q, int8_t *y, int32_t out_w,
                          int32_t out_stride, const int full, const int fast, const int clamp, const int sat)
{
    const int32_t nzp2 = tt_splat_s16x2(-q->in_zp);
    const int32_t lo4 = tt_splat_s8x4(q->act_min), hi4 = tt_splat_s8x4(q->act_max);
    const int32_t sw = g->stride_w, pl = g->pad_left, dw = g->dil_w;
    /* interior columns: every tap inside the row */
    int32_t ox_lo = (pl + sw - 1) / sw, ox_hi = (in_w - 1 - (kw - 1) * dw + pl) / sw + 1;
    int32_t ox;
    if (in_w - 1 - (kw - 1) * dw + pl < 0) ox_hi = 0;
    if (ox_hi > out_w) ox_hi = out_w;
    if (ox_lo > ox_hi) ox_lo = ox_hi;
    for (ox = 0; ox < out_w; ox++) {
        const int32_t ix0 = ox * sw - pl;
        int32_t kx0 = 0, kx1 = kw;
        if (ox == ox_lo && full && kh == 3 && kw == 3 && dw == 1 && r->n == 3 && ox_hi > ox_lo) {
            interior3x3(grp, r, ox_lo, ox_hi, g, q, y, out_stride, lo4, hi4, fast, clamp, sat);
            ox = ox_hi - 1;
            continue;
        }
        while (kx0 < kw && ix0 + kx0 * dw < 0)
            kx0++;
        while (kx1 > kx0 && ix0 + (kx1 - 1) * dw >= in_w)
            kx1--;
        pixel(grp, r, ix0, kx0, kx1, kw, dw, q, y + (size_t)ox * out_stride, nzp2, lo4, hi4, full, fast, clamp, sat);
    }
}

void tt_dw_row_dsp(const tt_dw_group_dsp *grp, const tt_dw_rows *r, int32_t in_w, int32_t kh, int32_t kw,
                   const tt_geom *g, const tt_requant *q, int8_t *y, int32_t out_w, int32_t out_stride,
                   int32_t fast, int32_t clamp)
{
    if (grp->sat) {
        /* a bias near the int32 limit: one generic instance (flags at run time) */
        row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, grp->n == 4, fast, clamp, 1);
    } else if (grp->n == 4) {
        if (fast) {
            if (clamp) row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 1, 1, 1, 0);
            else       row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 1, 1, 0, 0);
        } else {
            if (clamp) row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 1, 0, 1, 0);
            else       row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 1, 0, 0, 0);
        }
    } else {
        row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 0, 0, 1, 0);
    }
}

void tt_depthwise_conv2d_s8_dsp(const int8_t *x, const tt_dims *in,
                                const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                const tt_geom *g, const tt_requant *q, const tt_rq_dsp *rq,
                                int8_t *y, const tt_dims *out)
{
    const int32_t ch = in->c;
    const int32_t fast = tt_rq_dsp_all_fast(rq, ch), clamp = tt_rq_needs_clamp(q);
    tt_dw_group_dsp grp;
    tt_dw_rows r;
    int32_t c, oy, j;
    if (kh > TT_DW_MAX_KH || kh * kw > TT_DW_DSP_MAX_TAPS) {
        tt_depthwise_conv2d_s8(x, in, w, bias, kh, kw, g, q, y, out);
        return;
    }
    for (c = 0; c < ch; c += 4) {
        const int32_t n = ch - c < 4 ? ch - c : 4;
        tt_dw_group_prepare_dsp(&grp, w, bias, rq, q->in_zp, c, n, kh * kw, ch);
        for (oy = 0; oy < out->h; oy++) {
            tt_dw_rows_of(&r, oy, kh, g, in->h);
            for (j = 0; j < r.n; j++)
                r.row[j] = x + (size_t)r.iy[j] * in->w * ch + c;
            r.stride = ch;
            tt_dw_row_dsp(&grp, &r, in->w, kh, kw, g, q, y + (size_t)oy * out->w * ch + c, out->w, ch,
                          fast, clamp);
        }
    }
}
