/* int8 depthwise conv2d for Helium (MVE, Cortex-M55), bit-exact with tt_depthwise_conv2d_s8
 * (contract in tt_kernels_simd.h), and the row building block the in-place and fused _mve
 * variants share.
 *
 * Channels go eight at a time, widened to int16 lanes on load. MVE has no lane-wise
 * multiply-accumulate of two vectors, so per tap: one input load, one weight load (the
 * group's weights copied once into int16 vectors), VMULLB / VMULLT (the products of the even
 * and of the odd channels as int32) and two adds: 7 instructions for 8 MACs. Pixels whose
 * taps are all inside start from bias - in_zp * sum(w) (computed per group from the current
 * weights) and skip subtracting in_zp; border pixels start from the bias, subtract in_zp
 * per tap and visit only their valid taps. Where a bias could meet a sum at the int32 limit
 * (tt_bias_fold_exact, per group) the sums start without it and take it with VQADD (the
 * reference's saturating add). The even and odd channels are requantised as two vectors
 * (VQRDMULH, gemmlowp's rounding shift) and scattered to their bytes. A last group of 1-7
 * channels is tail-predicated. */
#include "tt_kernels.h"
#include "tt_kernels_simd.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

#define TT_ALWAYS_INLINE static inline __attribute__((always_inline))

void tt_dw_group_prepare_mve(tt_dw_group_mve *grp, const int8_t *w, const int32_t *bias,
                             const tt_requant *q, int32_t c, int32_t n, int32_t taps, int32_t ch)
{
    const mve_pred16_t p16 = vctp16q((uint32_t)n);
    const mve_pred16_t pe = vctp32q((uint32_t)((n + 1) / 2)), po = vctp32q((uint32_t)(n / 2));
    const uint32x4_t even = vidupq_n_u32(0, 2), odd = vidupq_n_u32(1, 2);
    int32x4_t se = vdupq_n_s32(0), so = vdupq_n_s32(0), be, bo, sh;
    int32_t t;
    grp->sat = !tt_bias_fold_exact(bias ? bias + c : NULL, n, taps, q->in_zp);
    for (t = 0; t < taps; t++) {
        const int16x8_t v = vldrbq_z_s16(w + (size_t)t * ch + c, p16);
        vst1q_s16(grp->w + 8 * t, v);
        se = vaddq_s32(se, vmovlbq_s16(v));
        so = vaddq_s32(so, vmovltq_s16(v));
    }
    be = bias ? vldrwq_gather_shifted_offset_z_s32(bias + c, even, pe) : vdupq_n_s32(0);
    bo = bias ? vldrwq_gather_shifted_offset_z_s32(bias + c, odd, po) : vdupq_n_s32(0);
    grp->bias[0] = be;
    grp->bias[1] = bo;
    if (grp->sat) be = bo = vdupq_n_s32(0);       /* the bias comes after the sums, saturating */
    grp->start[0] = be;
    grp->start[1] = bo;
    /* start - zp * sum(w): with it, sum x w is start + sum (x - zp) w exactly (modulo 2^32,
     * and the true value fits an int32) */
    grp->start_all[0] = vsubq_s32(be, vmulq_n_s32(se, q->in_zp));
    grp->start_all[1] = vsubq_s32(bo, vmulq_n_s32(so, q->in_zp));
    grp->mult[0] = vldrwq_gather_shifted_offset_z_s32(q->multiplier + c, even, pe);
    grp->mult[1] = vldrwq_gather_shifted_offset_z_s32(q->multiplier + c, odd, po);
    sh = vldrwq_gather_shifted_offset_z_s32(q->shift + c, even, pe);
    grp->left[0] = vmaxq_s32(sh, vdupq_n_s32(0));
    grp->right[0] = vminq_s32(sh, vdupq_n_s32(0));
    sh = vldrwq_gather_shifted_offset_z_s32(q->shift + c, odd, po);
    grp->left[1] = vmaxq_s32(sh, vdupq_n_s32(0));
    grp->right[1] = vminq_s32(sh, vdupq_n_s32(0));
    grp->c = c;
    grp->n = n;
}

/* The sums (sat: + the bias, saturating as the reference: VQADD) requantised and scattered
 * to the pixel's bytes. */
TT_ALWAYS_INLINE void put(const tt_dw_group_mve *grp, int32x4_t ae, int32x4_t ao, int32_t out_zp,
                          int32x4_t lo, int32x4_t hi, int8_t *dst, const int full, const int sat)
{
    const uint32x4_t even = vidupq_n_u32(0, 2), odd = vidupq_n_u32(1, 2);
    if (sat) {
        ae = vqaddq_s32(ae, grp->bias[0]);
        ao = vqaddq_s32(ao, grp->bias[1]);
    }
    ae = tt_requant_s32x4_mve(ae, grp->mult[0], grp->left[0], grp->right[0], out_zp, lo, hi);
    ao = tt_requant_s32x4_mve(ao, grp->mult[1], grp->left[1], grp->right[1], out_zp, lo, hi);
    if (full) {
        vstrbq_scatter_offset_s32(dst, even, ae);
        vstrbq_scatter_offset_s32(dst, odd, ao);
    } else {
        vstrbq_scatter_offset_p_s32(dst, even, ae, vctp32q((uint32_t)((grp->n + 1) / 2)));
        vstrbq_scatter_offset_p_s32(dst, odd, ao, vctp32q((uint32_t)(grp->n / 2)));
    }
}

/* One output pixel: taps [kx0, kx1) of every listed row, in_zp subtracted per tap. */
TT_ALWAYS_INLINE void pixel(const tt_dw_group_mve *grp, const tt_dw_rows *r, int32_t ix0, int32_t kx0,
                            int32_t kx1, int32_t kw, int32_t dil_w, int32_t in_zp, int32_t out_zp,
                            int32x4_t lo, int32x4_t hi, int8_t *dst, const int full, const int sat)
{
    const mve_pred16_t p16 = vctp16q((uint32_t)grp->n);
    const int32_t step = r->stride * dil_w;
    int32x4_t ae = grp->start[0], ao = grp->start[1];
    int32_t j, t;
    for (j = 0; j < r->n; j++) {
        const int8_t *p = r->row[j] + (ix0 + kx0 * dil_w) * r->stride;
        const int16_t *w = grp->w + 8 * (r->ky[j] * kw + kx0);
        for (t = kx0; t < kx1; t++) {
            const int16x8_t x = vsubq_n_s16(full ? vldrbq_s16(p) : vldrbq_z_s16(p, p16), (int16_t)in_zp);
            const int16x8_t wv = vld1q_s16(w);
            ae = vaddq_s32(ae, vmullbq_int_s16(x, wv));
            ao = vaddq_s32(ao, vmulltq_int_s16(x, wv));
            p += step;
            w += 8;
        }
    }
    put(grp, ae, ao, out_zp, lo, hi, dst, full, sat);
}

/* Hides a pointer's value from the optimiser: loads through it stay inside the loop
 * (hoisted out, the nine weight vectors did not fit the registers and were spilled,
 * then reloaded with an extra address computation each). */
#define TT_OPAQUE(p) __asm__("" : "+r"(p))

/* One tap of an interior pixel: raw input (in_zp is in start_all). */
#define TAP(P, T)                                                   \
    do {                                                            \
        const int16x8_t x_ = vldrbq_s16(P);                         \
        const int16x8_t w_ = vld1q_s16(wb + 8 * (T));               \
        ae = vaddq_s32(ae, vmullbq_int_s16(x_, w_));                \
        ao = vaddq_s32(ao, vmulltq_int_s16(x_, w_));                \
    } while (0)

/* The nine taps of a 3x3 window (rows p0, p1, p2, pixel stride s, int16 weights wb) into
 * the even / odd accumulators. In assembly: the compiler's scheduling loaded all nine
 * inputs first and spilled them to the stack. (Widening loads take a low base register.) */
#if TT_SIMD_ASM
#define TT_DW_MVE_TAP(ADDR, WOFF)                                   \
    ADDR                                                            \
    "vldrh.16    %q[w], [%[wb], #" WOFF "]\n\t"                    \
    "vmullb.s16  %q[t], %q[x], %q[w]\n\t"                          \
    "vadd.i32    %q[ae], %q[ae], %q[t]\n\t"                        \
    "vmullt.s16  %q[t], %q[x], %q[w]\n\t"                          \
    "vadd.i32    %q[ao], %q[ao], %q[t]\n\t"
#define TT_DW_MVE_ROW(P, W0, W1, W2)                                                  \
    TT_DW_MVE_TAP("vldrb.s16   %q[x], [" P "]\n\t", W0)                               \
    TT_DW_MVE_TAP("add         %[a], " P ", %[s]\n\tvldrb.s16   %q[x], [%[a]]\n\t", W1) \
    TT_DW_MVE_TAP("add         %[a], %[a], %[s]\n\tvldrb.s16   %q[x], [%[a]]\n\t", W2)

TT_ALWAYS_INLINE void taps3x3(const int8_t *p0, const int8_t *p1, const int8_t *p2, int32_t s,
                              const int16_t *wb, int32x4_t *ae, int32x4_t *ao)
{
    int16x8_t x, w;
    int32x4_t t;
    const int8_t *a;
    __asm__(TT_DW_MVE_ROW("%[p0]", "0", "16", "32") TT_DW_MVE_ROW("%[p1]", "48", "64", "80")
            TT_DW_MVE_ROW("%[p2]", "96", "112", "128")
            : [ae] "+w"(*ae), [ao] "+w"(*ao), [x] "=&w"(x), [w] "=&w"(w), [t] "=&w"(t), [a] "=&l"(a)
            : [p0] "l"(p0), [p1] "l"(p1), [p2] "l"(p2), [s] "r"(s), [wb] "r"(wb),
              "m"(*(const int8_t(*)[])p0), "m"(*(const int8_t(*)[])p1), "m"(*(const int8_t(*)[])p2),
              "m"(*(const int16_t(*)[72])wb));
}
#else
TT_ALWAYS_INLINE void taps3x3(const int8_t *p0, const int8_t *p1, const int8_t *p2, int32_t s,
                              const int16_t *wb, int32x4_t *ae_, int32x4_t *ao_)
{
    int32x4_t ae = *ae_, ao = *ao_;
    TAP(p0, 0);
    TAP(p0 + s, 1);
    TAP(p0 + 2 * s, 2);
    TAP(p1, 3);
    TAP(p1 + s, 4);
    TAP(p1 + 2 * s, 5);
    TAP(p2, 6);
    TAP(p2 + s, 7);
    TAP(p2 + 2 * s, 8);
    *ae_ = ae;
    *ao_ = ao;
}

#endif

/* Interior pixels [ox0, ox1) of a 3x3, horizontally undilated, full group, all 3 rows in. */
TT_ALWAYS_INLINE void interior3x3(const tt_dw_group_mve *grp, const tt_dw_rows *r, int32_t ox0,
                                  int32_t ox1, const tt_geom *g, int32_t out_zp, int32x4_t lo,
                                  int32x4_t hi, int8_t *y, int32_t out_stride, const int sat)
{
    const int32_t s = r->stride, adv = s * g->stride_w;
    const int8_t *p0 = r->row[0] + (ox0 * g->stride_w - g->pad_left) * s;
    const int8_t *p1 = r->row[1] + (ox0 * g->stride_w - g->pad_left) * s;
    const int8_t *p2 = r->row[2] + (ox0 * g->stride_w - g->pad_left) * s;
    int8_t *dst = y + (size_t)ox0 * out_stride;
    int32_t ox;
    for (ox = ox0; ox < ox1; ox++) {
        const tt_dw_group_mve *gp = grp;
        int32x4_t ae, ao;
        TT_OPAQUE(gp);
        ae = gp->start_all[0];
        ao = gp->start_all[1];
        taps3x3(p0, p1, p2, s, gp->w, &ae, &ao);
        put(gp, ae, ao, out_zp, lo, hi, dst, 1, sat);
        p0 += adv;
        p1 += adv;
        p2 += adv;
        dst += out_stride;
    }
}

/* Interior pixels of any other kernel (full group): every tap of every row, raw input. */
TT_ALWAYS_INLINE void interior(const tt_dw_group_mve *grp, const tt_dw_rows *r, int32_t ox0, int32_t ox1,
                               int32_t kw, const tt_geom *g, int32_t out_zp, int32x4_t lo, int32x4_t hi,
                               int8_t *y, int32_t out_stride, const int sat)
{
    const int32_t s = r->stride, step = s * g->dil_w;
    int32_t ox, j, t;
    for (ox = ox0; ox < ox1; ox++) {
        const int32_t ix0 = ox * g->stride_w - g->pad_left;
        int32x4_t ae = grp->start_all[0], ao = grp->start_all[1];
        const int16_t *wb = grp->w;
        TT_OPAQUE(wb);
        for (j = 0; j < r->n; j++) {
            const int8_t *p = r->row[j] + ix0 * s;
            const int32_t t0 = r->ky[j] * kw;
            for (t = 0; t < kw; t++) {
                TAP(p, t0 + t);
                p += step;
            }
        }
        put(grp, ae, ao, out_zp, lo, hi, y + (size_t)ox * out_stride, 1, sat);
    }
}

TT_ALWAYS_INLINE void row(const tt_dw_group_mve *grp, const tt_dw_rows *r, int32_t in_w, int32_t kh, int32_t kw,
                          const tt_geom *g, const tt_requant *q, int8_t *y, int32_t out_w, int32_t out_stride,
                          const int sat)
{
    const int32x4_t lo = vdupq_n_s32(q->act_min), hi = vdupq_n_s32(q->act_max);
    const int32_t sw = g->stride_w, pl = g->pad_left, dw = g->dil_w;
    const int full = grp->n == 8;
    /* interior columns: every tap inside the row */
    int32_t ox_lo = (pl + sw - 1) / sw, ox_hi = (in_w - 1 - (kw - 1) * dw + pl) / sw + 1;
    int32_t ox;
    if (in_w - 1 - (kw - 1) * dw + pl < 0) ox_hi = 0;
    if (ox_hi > out_w) ox_hi = out_w;
    if (ox_lo > ox_hi) ox_lo = ox_hi;
    for (ox = 0; ox < out_w; ox++) {
        const int32_t ix0 = ox * sw - pl;
        int32_t kx0 = 0, kx1 = kw;
        if (ox == ox_lo && full && r->n == kh && ox_hi > ox_lo) {
            if (kh == 3 && kw == 3 && dw == 1)
                interior3x3(grp, r, ox_lo, ox_hi, g, q->out_zp, lo, hi, y, out_stride, sat);
            else
                interior(grp, r, ox_lo, ox_hi, kw, g, q->out_zp, lo, hi, y, out_stride, sat);
            ox = ox_hi - 1;
            continue;
        }
        while (kx0 < kw && ix0 + kx0 * dw < 0)
            kx0++;
        while (kx1 > kx0 && ix0 + (kx1 - 1) * dw >= in_w)
            kx1--;
        if (full)
            pixel(grp, r, ix0, kx0, kx1, kw, dw, q->in_zp, q->out_zp, lo, hi, y + (size_t)ox * out_stride, 1, sat);
        else
            pixel(grp, r, ix0, kx0, kx1, kw, dw, q->in_zp, q->out_zp, lo, hi, y + (size_t)ox * out_stride, 0, sat);
    }
}

/* a bias near the int32 limit: its own instance, out of the common one's way */
static void __attribute__((noinline)) row_saturating(const tt_dw_group_mve *grp, const tt_dw_rows *r,
                                                     int32_t in_w, int32_t kh, int32_t kw, const tt_geom *g,
                                                     const tt_requant *q, int8_t *y, int32_t out_w,
                                                     int32_t out_stride)
{
    row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 1);
}

void tt_dw_row_mve(const tt_dw_group_mve *grp, const tt_dw_rows *r, int32_t in_w, int32_t kh, int32_t kw,
                   const tt_geom *g, const tt_requant *q, int8_t *y, int32_t out_w, int32_t out_stride)
{
    if (grp->sat)
        row_saturating(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride);
    else
        row(grp, r, in_w, kh, kw, g, q, y, out_w, out_stride, 0);
}

void tt_depthwise_conv2d_s8_mve(const int8_t *x, const tt_dims *in,
                                const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                const tt_geom *g, const tt_requant *q,
                                int8_t *y, const tt_dims *out)
{
    const int32_t ch = in->c;
    tt_dw_group_mve grp;
    tt_dw_rows r;
    int32_t c, oy, j;
    if (kh > TT_DW_MAX_KH || kh * kw > TT_DW_MVE_MAX_TAPS) {
        tt_depthwise_conv2d_s8(x, in, w, bias, kh, kw, g, q, y, out);
        return;
    }
    for (c = 0; c < ch; c += 8) {
        const int32_t n = ch - c < 8 ? ch - c : 8;
        tt_dw_group_prepare_mve(&grp, w, bias, q, c, n, kh * kw, ch);
        for (oy = 0; oy < out->h; oy++) {
            tt_dw_rows_of(&r, oy, kh, g, in->h);
            for (j = 0; j < r.n; j++)
                r.row[j] = x + (size_t)r.iy[j] * in->w * ch + c;
            r.stride = ch;
            tt_dw_row_mve(&grp, &r, in->w, kh, kw, g, q, y + (size_t)oy * out->w * ch + c, out->w, ch);
        }
    }
}

#endif /* __ARM_FEATURE_MVE */
