/* tt_kernels_simd.h - optimised int8 kernels (the forward ones, the conv2d / depthwise input
 * gradients, the fully connected backward): variants of the reference kernels
 * of tt_kernels.h for the Cortex-M DSP extension (`_dsp`: Cortex-M4/M7/M33/M55) and for
 * Helium MVE (`_mve`: Cortex-M55). Each variant gives the very same bytes as its reference
 * kernel (tests/test_kernels_simd.py checks it on the host and under QEMU).
 *
 * Files: firmware/kernels/<op>/<op>_s8_dsp.c and <op>_s8_mve.c. The _dsp kernels are plain
 * C99 over tt_simd.h, so they also build (slowly) where the DSP extension is absent; the
 * _mve kernels exist only where __ARM_FEATURE_MVE is defined.
 *
 * What they need beyond the reference's arguments:
 *   - `_dsp`: a requantisation table `rq` (tt_rq_dsp, one entry per output channel) made
 *     offline from the layer's multipliers by tinytrain.kernel_prep.requant_dsp(q); the
 *     scales of a layer never change, not even in training. Weights and biases are taken
 *     as they are (training updates them on the device, so nothing is folded into them).
 *   - a scratch buffer, 4-byte aligned, of the size the *_scratch_bytes() function gives
 *     (0 where there is none); it only lives during the call.
 * Geometry, zero points, NULL bias, per-tensor or per-channel requantisation, activation
 * clamps: all as in the reference kernels, unless a variant's comment says otherwise.
 *
 * The int32 limits: the reference adds the bias to the exact sum of (x - in_zp) * w with
 * saturation (tt_sat_add_s32), and out_zp after the rescale too. The variants start their
 * running sums from the bias (folded with -in_zp * sum(w) where they fold in_zp) only where
 * tt_bias_fold_exact proves no sum can reach the limit (then bias + sum is the saturating
 * add exactly: every realistic layer); otherwise they compute the sum alone (exact modulo
 * 2^32, and it fits an int32) and add the bias with QADD / VQADD per output (conv2d _mve:
 * runs the reference instead). out_zp is added saturating. So a bias at INT32_MAX / INT32_MIN (on-device training saturates biases)
 * or a rescaled value next to the limit gives the reference's bytes
 * (tests/test_kernels_simd.py, "int32 limits"). */
#ifndef TT_KERNELS_SIMD_H
#define TT_KERNELS_SIMD_H

#include "tt_types.h"
#include "tt_fixedpoint.h"
#include "tt_simd.h"
#include "tt_train_kernels.h"
#include "tt_kernels.h"       /* tt_add_params */
#include <string.h>

/* ---- requantisation ---------------------------------------------------------------------
 * The reference (tt_requantize_s8): y = clamp(RDBP(SRDHM(acc << l, m), r) + out_zp) with
 * TFLite's two roundings, ~50 instructions on a Cortex-M4. For a channel whose right shift
 * r is in [2, 22] (every ordinary conv layer; multipliers are >= 0) both roundings and the
 * zero point collapse into one 64-bit multiply-accumulate, exactly, for every int32 acc:
 *
 *   y = (acc * m + C) >> (31 + r),   C = 2^(30+r) + 2^30 + out_zp * 2^(31+r) - [acc < 0] * 2^31
 *
 * Why: SRDHM(a, m) = floor((a*m + 2^30) / 2^31) exactly (gemmlowp's nudge and truncating
 * division amount to that); RDBP(z, r) = floor((z - [z < 0] + 2^(r-1)) / 2^r); nested floors
 * of integer quotients are one floor; and [z < 0] may be replaced by [acc < 0] because they
 * differ only when z == 0, where both give 0. r <= 22 keeps C and the sum inside 64 bits.
 * With lo = 2^30 ^ (acc & 2^31) and hi = hi_c + (acc >> 31) holding C, that is one SMLAL
 * then an arithmetic shift of the high word by r - 1: AND, EOR, ADD, SMLAL, ASR, SSAT per
 * output. Channels outside that range (shift >= -1 or < -22) keep the reference arithmetic:
 * `shift` is -1 for them. */
typedef struct {
    int32_t mult;    /* the channel's multiplier, as in tt_requant */
    int32_t hi;      /* 2^(r-2) + out_zp * 2^(r-1): the high word of C for acc >= 0 */
    int32_t shift;   /* r - 1 (1..21), or -1: this channel takes the reference arithmetic */
} tt_rq_dsp;

/* One output, fast path only (p->shift >= 0): the requantised value plus out_zp, saturated
 * to int8 (the activation clamp is the caller's). */
static inline int32_t tt_requant_dsp_fast3(int32_t acc, int32_t mult, int32_t hi_c, int32_t shift)
{
    uint32_t lo = 0x40000000u ^ ((uint32_t)acc & 0x80000000u);
    int32_t hi = hi_c + (acc >> 31);
    tt_smlal(&lo, &hi, acc, mult);
    return tt_ssat8(hi >> shift);
}
static inline int32_t tt_requant_dsp_fast(int32_t acc, const tt_rq_dsp *p)
{
    return tt_requant_dsp_fast3(acc, p->mult, p->hi, p->shift);
}

/* One output of channel c, either path; the activation clamp is the caller's (the
 * reference path has applied it already, applying it again changes nothing). */
static inline int32_t tt_requant_dsp(int32_t acc, const tt_rq_dsp *p, const tt_requant *q, int32_t c)
{
    if (p->shift >= 0) return tt_requant_dsp_fast(acc, p);
    return tt_requantize_s8(acc, q, c);
}

/* 1 if every one of the n channels takes the fast path. */
static inline int32_t tt_rq_dsp_all_fast(const tt_rq_dsp *rq, int32_t n)
{
    int32_t c;
    for (c = 0; c < n; c++)
        if (rq[c].shift < 0) return 0;
    return 1;
}

/* 1 if the activation clamp is narrower than int8 (so SSAT alone is not enough). */
static inline int32_t tt_rq_needs_clamp(const tt_requant *q)
{
    return q->act_min > -128 || q->act_max < 127;
}

/* ---- the bias: folded into the sums where provably exact, else added saturating ----------
 * 1 if no bias of the n channels (NULL: none) can meet a sum of `taps` products
 * (x - in_zp) * w at the int32 limit: |sum| <= taps * max|x - in_zp| * 128, so when every
 * |bias| <= INT32_MAX - that bound, bias + sum never leaves int32 and a variant may start its
 * running sums from the bias (wrapping partial sums included: the result is the same modulo
 * 2^32 and in range), which is the reference's saturating add exactly. Otherwise the variant
 * starts from 0 (or -in_zp * sum(w)) and adds the bias with QADD / VQADD per output (or, for
 * conv2d _mve, writes the channel's constant output, tt_channel_output_constant, or runs
 * the reference if a channel has none). Every layer whose bias may be trained takes the first
 * way: training keeps biases within +-2^30 and refuses layers of more than
 * qas.MAX_BIAS_TAPS taps, which is this bound. */
static inline int32_t tt_bias_fold_exact(const int32_t *bias, int32_t n, int32_t taps, int32_t in_zp)
{
    const uint32_t dx = (uint32_t)(in_zp >= 0 ? 128 + in_zp : 127 - in_zp);   /* max |x - zp| <= 255 */
    uint32_t lim, span;
    int32_t c;
    if (!bias) return 1;
    if ((uint32_t)taps > 0xFFFFFFu / dx) return 0;     /* the bound taps * dx * 128 > INT32_MAX */
    lim = 0x7FFFFFFFu - (uint32_t)taps * dx * 128u;
    /* -lim - 1 <= b <= lim, as one unsigned compare of b + lim + 1 (modulo 2^32) */
    span = 2u * lim + 1u;
    for (c = 0; c < n; c++)
        if ((uint32_t)bias[c] + lim + 1u > span) return 0;
    return 1;
}

/* A channel whose bias the proof above cannot fold (imported models have biases at the
 * limit: MCUNet's and Proxyless's first layers hold -2^31 in dead channels): its sums of
 * (x - in_zp) * w lie within +-max|x - in_zp| * sum|w|, and its output byte is monotone in the
 * sum (the saturating bias add; the rescale, for a multiplier >= 0 and no left shift, which
 * TFLite applies with wrap-around; out_zp saturating; the clamp). If both ends of that range
 * give the same byte, every output of the channel is that byte: *v = it, 1. Else 0. */
static inline int32_t tt_channel_output_constant(const int8_t *w, int32_t taps, int32_t bias, int32_t in_zp,
                                                 const tt_requant *q, int32_t c, int8_t *v)
{
    const int32_t dx = in_zp >= 0 ? 128 + in_zp : 127 - in_zp;
    int64_t bound = 0;
    int32_t i;
    if (q->multiplier[c] < 0 || q->shift[c] > 0) return 0;
    for (i = 0; i < taps; i++) bound += w[i] < 0 ? -(int32_t)w[i] : w[i];
    bound *= dx;
    if (bound > 0x7FFFFFFF) return 0;
    *v = tt_requantize_s8(tt_sat_add_s32(-(int32_t)bound, bias), q, c);
    return *v == tt_requantize_s8(tt_sat_add_s32((int32_t)bound, bias), q, c);
}

/* ---- im2col (the conv variants' general path) --------------------------------------------
 * n int8 from s to d (no overlap), word by word then byte by byte: short spans stay inline
 * (a byte loop becomes a memcpy call, costly for the 3-9 bytes of a first layer's taps). */
static inline void tt_copy_s8(int8_t *d, const int8_t *s, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
        tt_store_s8x4(d + i, tt_load_s8x4(s + i));
    if (i < n) d[i] = s[i];
    if (i + 1 < n) d[i + 1] = s[i + 1];
    if (i + 2 < n) d[i + 2] = s[i + 2];
}
static inline void tt_fill_s8(int8_t *d, int32_t v, int32_t n)
{
    const int32_t v4 = tt_splat_s8x4(v);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
        tt_store_s8x4(d + i, v4);
    if (i < n) d[i] = (int8_t)v;
    if (i + 1 < n) d[i + 1] = (int8_t)v;
    if (i + 2 < n) d[i + 2] = (int8_t)v;
}
/* The receptive field of output pixel (oy, ox) into col (kh * kw * in->c bytes, HWC order),
 * taps outside the input as zp: per kernel row, the valid taps' span is copied at once
 * (contiguous when dil_w == 1). */
static inline void tt_im2col_s8(const int8_t *x, const tt_dims *in, int32_t kh, int32_t kw, const tt_geom *g,
                                int32_t oy, int32_t ox, int32_t zp, int8_t *col)
{
    const int32_t cin = in->c, ix0 = ox * g->stride_w - g->pad_left;
    int32_t kx0 = 0, kx1 = kw, ky, kx;
    while (kx0 < kw && ix0 + kx0 * g->dil_w < 0)
        kx0++;
    while (kx1 > kx0 && ix0 + (kx1 - 1) * g->dil_w >= in->w)
        kx1--;
    for (ky = 0; ky < kh; ky++) {
        const int32_t iy = oy * g->stride_h - g->pad_top + ky * g->dil_h;
        int8_t *row = col + (size_t)ky * kw * cin;
        if (iy < 0 || iy >= in->h || kx0 >= kx1) {
            tt_fill_s8(row, zp, kw * cin);
            continue;
        }
        tt_fill_s8(row, zp, kx0 * cin);
        if (g->dil_w == 1) {
            tt_copy_s8(row + kx0 * cin, x + ((size_t)iy * in->w + ix0 + kx0) * cin, (kx1 - kx0) * cin);
        } else {
            for (kx = kx0; kx < kx1; kx++)
                tt_copy_s8(row + kx * cin, x + ((size_t)iy * in->w + ix0 + kx * g->dil_w) * cin, cin);
        }
        tt_fill_s8(row + kx1 * cin, zp, (kw - kx1) * cin);
    }
}

/* ---- conv2d -----------------------------------------------------------------------------
 * tt_conv2d_s8_dsp: any geometry the reference takes (kernel, stride, padding, dilation).
 *   1x1 kernel, stride 1, no padding: the input is read as a [pixels x cin] matrix;
 *   otherwise each output pixel's window is gathered (im2col, padded taps as in_zp, which
 *   count zero). Four pixels at a time are widened to int16 with in_zp subtracted (SXTAB16),
 *   then every output channel: 4 outputs per step, four int8 weights per load, eight SMLAD
 *   per four K values. Any pixel / channel count and K % 4 are handled.
 *   rq: requant_dsp(q), out->c entries. Scratch: tt_conv2d_s8_dsp_scratch_bytes. */
static inline int32_t tt_conv2d_s8_dsp_k4(int32_t kh, int32_t kw, int32_t cin)
{
    return (kh * kw * cin + 3) & ~3;
}
static inline int32_t tt_conv2d_s8_dsp_scratch_bytes(int32_t kh, int32_t kw, int32_t cin)
{
    /* four int16 rows of K (rounded up to 4) + one int8 im2col row */
    return 9 * tt_conv2d_s8_dsp_k4(kh, kw, cin);
}
void tt_conv2d_s8_dsp(const int8_t *x, const tt_dims *in,
                      const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                      const tt_geom *g, const tt_requant *q, const tt_rq_dsp *rq,
                      int8_t *y, const tt_dims *out, void *scratch);

/* tt_conv2d_s8_mve (Cortex-M55): any geometry the reference takes. 1x1 stride-1 unpadded:
 *   the input read in place; otherwise im2col, four pixels at a time (padded taps as
 *   in_zp). in_zp folded at run time through per-channel weight sums (kept in the scratch:
 *   bias - in_zp * sum(w), the sums' start; where tt_bias_fold_exact fails, the call runs
 *   the reference). Four pixels x one channel per step, VMLADAVA over 16 K values,
 *   tail-predicated.
 *   Scratch: tt_conv2d_s8_mve_scratch_bytes. */
static inline int32_t tt_conv2d_s8_mve_k16(int32_t kh, int32_t kw, int32_t cin)
{
    return (kh * kw * cin + 3) & ~3;   /* an im2col row, rounded up to a word */
}
static inline int32_t tt_conv2d_s8_mve_scratch_bytes(int32_t kh, int32_t kw, int32_t cin, int32_t cout)
{
    /* the per-channel bias - in_zp * sum(w), then four im2col rows */
    return 4 * ((cout + 3) & ~3) + 4 * tt_conv2d_s8_mve_k16(kh, kw, cin);
}
#if defined(__ARM_FEATURE_MVE)
void tt_conv2d_s8_mve(const int8_t *x, const tt_dims *in,
                      const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                      const tt_geom *g, const tt_requant *q,
                      int8_t *y, const tt_dims *out, void *scratch);

#endif

/* ---- depthwise_conv2d (depth multiplier 1) ----------------------------------------------
 * tt_depthwise_conv2d_s8_dsp: any geometry the reference takes, kh <= TT_DW_MAX_KH and
 * kh * kw <= TT_DW_DSP_MAX_TAPS (7x7; larger kernels run the reference kernel). Four
 * channels per step: per tap one input load, two SXTAB16, one weight load, four SMLABB /
 * SMLATT; borders visit only their valid taps; a 3x3 kernel's interior runs its nine taps
 * straight (from bias - in_zp * sum(w), computed at run time; where tt_bias_fold_exact
 * fails, without the bias, added by QADD per output). A last group of 1-3 channels is
 * handled. rq: requant_dsp(q), in->c entries. No scratch (~0.5 KB of stack). */
#define TT_DW_MAX_KH 8
#define TT_DW_DSP_MAX_TAPS 49
void tt_depthwise_conv2d_s8_dsp(const int8_t *x, const tt_dims *in,
                                const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                const tt_geom *g, const tt_requant *q, const tt_rq_dsp *rq,
                                int8_t *y, const tt_dims *out);

/* tt_depthwise_conv2d_inplace_s8_dsp: y may be x (then stride 1 and out dims == in dims, as
 * for the reference); otherwise any geometry. Four channels at a time through a ring of
 * the input rows one output row spans. Scratch: tt_depthwise_conv2d_inplace_s8_scratch_bytes
 * (G = 4); for kernels beyond TT_DW_DSP_MAX_TAPS it is the reference's plane (h * w). */
static inline int32_t tt_dw_inplace_scratch_bytes(const tt_dims *in, int32_t kh, int32_t kw, int32_t dil_h,
                                                  int32_t group, int32_t max_taps)
{
    if (kh > TT_DW_MAX_KH || kh * kw > max_taps) return in->h * in->w;
    return ((kh - 1) * dil_h + 1) * in->w * group;
}
static inline int32_t tt_depthwise_conv2d_inplace_s8_dsp_scratch_bytes(const tt_dims *in, int32_t kh, int32_t kw,
                                                                        int32_t dil_h)
{
    return tt_dw_inplace_scratch_bytes(in, kh, kw, dil_h, 4, TT_DW_DSP_MAX_TAPS);
}
void tt_depthwise_conv2d_inplace_s8_dsp(const int8_t *x, const tt_dims *in,
                                        const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                        const tt_geom *g, const tt_requant *q, const tt_rq_dsp *rq,
                                        int8_t *y, const tt_dims *out, void *scratch);

/* Building blocks of the three depthwise _dsp variants (plain, in place, fused). */
typedef struct {              /* one group of up to four channels, prepared once */
    int32_t w[2 * TT_DW_DSP_MAX_TAPS];   /* per tap: (w_c0, w_c2), (w_c1, w_c3) as int16 */
    int32_t bias[4];          /* the bias (0 without one) */
    int32_t start[4];         /* the sums' start: the bias, or 0 where sat */
    int32_t start_all[4];     /* start - in_zp * (sum of the weights): pixels with every tap inside */
    int32_t sat;              /* a bias may meet a sum at the int32 limit (tt_bias_fold_exact):
                                 start from 0, add the bias with QADD per output */
    int32_t mult[4], hi[4], shift[4], chan[4];   /* requantisation (tt_rq_dsp), channel index */
    int32_t c, n;             /* first channel, channels (1..4) */
} tt_dw_group_dsp;
typedef struct {              /* the input rows one output row reads */
    const int8_t *row[TT_DW_MAX_KH];  /* pixel 0 of the row, at the group's channel c */
    int32_t ky[TT_DW_MAX_KH];         /* the kernel row each one meets */
    int32_t iy[TT_DW_MAX_KH];         /* its input row index */
    int32_t n;                            /* rows inside the input (padded rows are left out) */
    int32_t stride;                       /* bytes between horizontally adjacent pixels */
} tt_dw_rows;
void tt_dw_group_prepare_dsp(tt_dw_group_dsp *grp, const int8_t *w, const int32_t *bias,
                             const tt_rq_dsp *rq, int32_t in_zp, int32_t c, int32_t n, int32_t taps,
                             int32_t ch);
/* r->n, ky, iy of output row oy (row pointers and stride are the caller's). */
static inline void tt_dw_rows_of(tt_dw_rows *r, int32_t oy, int32_t kh, const tt_geom *g, int32_t in_h)
{
    const int32_t iy0 = oy * g->stride_h - g->pad_top;
    int32_t ky;
    r->n = 0;
    for (ky = 0; ky < kh; ky++) {
        const int32_t iy = iy0 + ky * g->dil_h;
        if (iy < 0 || iy >= in_h) continue;
        r->ky[r->n] = ky;
        r->iy[r->n] = iy;
        r->n++;
    }
}
/* One output row of one group: y points at its pixel 0, channel c; out_stride bytes
 * between output pixels. fast: every channel of the layer takes the fast requantisation;
 * clamp: the activation range is narrower than int8. */
void tt_dw_row_dsp(const tt_dw_group_dsp *grp, const tt_dw_rows *r, int32_t in_w, int32_t kh, int32_t kw,
                   const tt_geom *g, const tt_requant *q, int8_t *y, int32_t out_w, int32_t out_stride,
                   int32_t fast, int32_t clamp);

/* tt_depthwise_conv2d_s8_mve (Cortex-M55): any geometry the reference takes, kh <=
 * TT_DW_MAX_KH and kh * kw <= TT_DW_MVE_MAX_TAPS (7x7; larger kernels run the reference).
 * Eight channels per step as int16 lanes: per tap one input load, one weight load,
 * VMULLB + VMULLT, two adds; interior pixels start from bias - in_zp * sum(w) (run time),
 * border pixels from the bias, subtracting in_zp and visiting only their valid taps (where
 * tt_bias_fold_exact fails: without the bias, added by VQADD); a last group of 1-7
 * channels is tail-predicated. No scratch (~1 KB of stack). */
#define TT_DW_MVE_MAX_TAPS 49
/* tt_depthwise_conv2d_inplace_s8_mve: as the _dsp one, eight channels at a time. */
static inline int32_t tt_depthwise_conv2d_inplace_s8_mve_scratch_bytes(const tt_dims *in, int32_t kh, int32_t kw,
                                                                        int32_t dil_h)
{
    return tt_dw_inplace_scratch_bytes(in, kh, kw, dil_h, 8, TT_DW_MVE_MAX_TAPS);
}
#if defined(__ARM_FEATURE_MVE)
void tt_depthwise_conv2d_inplace_s8_mve(const int8_t *x, const tt_dims *in,
                                        const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                        const tt_geom *g, const tt_requant *q,
                                        int8_t *y, const tt_dims *out, void *scratch);
#include <arm_mve.h>
/* Requantisation of four int32 lanes with per-lane multipliers and shifts (TFLite's double
 * rounding, CMSIS-NN's arrangement): VQRDMULH is SRDHM exactly (saturation included), VRSHL
 * rounds half up, so negative values with a right shift first take one off (gemmlowp's
 * fix-up; (z & right) >> 31 is -1 exactly then). left = max(shift, 0), right =
 * min(shift, 0). Then + out_zp, saturating as the reference's tt_sat_add_s32 (with no right
 * shift the value may sit next to the int32 limit), and the clamp to [lo, hi] (the
 * activation range, within int8). */
static inline int32x4_t tt_requant_s32x4_mve(int32x4_t acc, int32x4_t mult, int32x4_t left, int32x4_t right,
                                             int32_t out_zp, int32x4_t lo, int32x4_t hi)
{
    int32x4_t z = vqrdmulhq_s32(vshlq_s32(acc, left), mult);
    z = vqaddq_s32(z, vshrq_n_s32(vandq_s32(z, right), 31));
    z = vrshlq_s32(z, right);
    return vminq_s32(vmaxq_s32(vqaddq_n_s32(z, out_zp), lo), hi);
}
void tt_depthwise_conv2d_s8_mve(const int8_t *x, const tt_dims *in,
                                const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                const tt_geom *g, const tt_requant *q,
                                int8_t *y, const tt_dims *out);
typedef struct {              /* one group of up to eight channels, prepared once */
    int16_t w[8 * TT_DW_MVE_MAX_TAPS];   /* per tap the eight weights, int16 */
    int32x4_t bias[2];        /* even channels (c, c+2, c+4, c+6), odd channels */
    int32x4_t start[2];       /* the sums' start: the bias, or 0 where sat */
    int32x4_t start_all[2];   /* start - in_zp * sum(w): pixels with every tap inside */
    int32x4_t mult[2], left[2], right[2];   /* multiplier, max(shift, 0), min(shift, 0) */
    int32_t c, n;             /* first channel, channels (1..8) */
    int32_t sat;              /* a bias may meet a sum at the int32 limit (tt_bias_fold_exact):
                                 start from 0, add the bias with VQADD per pixel */
} tt_dw_group_mve;
void tt_dw_group_prepare_mve(tt_dw_group_mve *grp, const int8_t *w, const int32_t *bias,
                             const tt_requant *q, int32_t c, int32_t n, int32_t taps, int32_t ch);
void tt_dw_row_mve(const tt_dw_group_mve *grp, const tt_dw_rows *r, int32_t in_w, int32_t kh, int32_t kw,
                   const tt_geom *g, const tt_requant *q, int8_t *y, int32_t out_w, int32_t out_stride);

#endif

/* ---- fully_connected ---------------------------------------------------------------------
 * tt_fully_connected_s8_dsp / _mve: the reference's arguments and semantics (LiteRT's
 * single-rounding rescale), any sizes. _dsp: two outputs per step, SXTAB16 + SMLAD over
 * four inputs. _mve: four outputs per step, VMLADAVA over 16 inputs, in_zp folded through
 * the weights' sums (VADDVA), tail-predicated. Both: the bias, and out_zp after the rescale,
 * added saturating. No scratch, no prepared data. */
void tt_fully_connected_s8_dsp(const int8_t *x, int32_t in_features,
                               const int8_t *w, const int32_t *bias, int32_t out_features,
                               const tt_requant *q, int8_t *y);
#if defined(__ARM_FEATURE_MVE)
void tt_fully_connected_s8_mve(const int8_t *x, int32_t in_features,
                               const int8_t *w, const int32_t *bias, int32_t out_features,
                               const tt_requant *q, int8_t *y);
#endif

/* tt_fully_connected_grad_input_s8_dsp / _mve, _grad_weight_s8_dsp / _mve,
 * _update_weight_s8_dsp (training, int8 graphs): the reference kernels' arguments, floats
 * and bytes (every update mode, the PRNG's draws included). grad_input runs the conv2d
 * input gradient variant on a 1x1 shape; grad_weight and update_weight convert the inputs
 * (x - zp) to float once per TT_FC_CHUNK of them (on the stack), the update rounds through
 * tt_update_fast.h (_mve: below). _mve grad_weight runs a row in scalar where Helium's flushed denormals
 * could change a float (fully_connected_backward_s8_mve.c). No scratch. */
#define TT_FC_CHUNK 64
/* A fully connected layer as a 1x1 convolution of one pixel, the shape its input-gradient
 * variants hand to conv2d's: tt_fc_as_conv(&c, in, out) fills c and returns &c.s. (A struct
 * tag, not a typedef: the typedef structs of these headers are the parameter structs whose
 * sizes tinytrain.cgen.kernels reads.) */
struct tt_fc_conv {
    tt_dims in, out;
    tt_geom g;
    tt_conv_shape s;
};
static inline const tt_conv_shape *tt_fc_as_conv(struct tt_fc_conv *c, int32_t in_features, int32_t out_features)
{
    const tt_dims in = {1, 1, in_features}, out = {1, 1, out_features};
    const tt_geom g = {1, 1, 0, 0, 1, 1};
    c->in = in;
    c->out = out;
    c->g = g;
    c->s.in = &c->in;
    c->s.out = &c->out;
    c->s.kh = c->s.kw = 1;
    c->s.g = &c->g;
    return &c->s;
}
/* xf[i] = (float)(x[i] - zp), i < n: exact (|x - zp| <= 255). */
static inline void tt_fc_inputs_f32(const int8_t *x, int32_t zp, int32_t n, float *xf)
{
    int32_t i;
    for (i = 0; i < n; ++i) xf[i] = (float)((int32_t)x[i] - zp);
}
void tt_fully_connected_grad_input_s8_dsp(int32_t in_features, int32_t out_features,
                                          const float *grad_y, const int8_t *w,
                                          const tt_weight_quant *wq, int32_t accumulate,
                                          float *grad_x);
void tt_fully_connected_grad_weight_s8_dsp(int32_t out_features, const tt_channels *ch,
                                           const int8_t *x, const tt_act_quant *xq,
                                           const float *grad_y, int32_t accumulate, float *grad_w);
void tt_fully_connected_update_weight_s8_dsp(int32_t out_features, const tt_channels *ch, int8_t *w,
                                             const tt_weight_quant *wq, const int8_t *x,
                                             const tt_act_quant *xq, const float *grad_y,
                                             const tt_update *u);
#if defined(__ARM_FEATURE_MVE)
void tt_fully_connected_grad_input_s8_mve(int32_t in_features, int32_t out_features,
                                          const float *grad_y, const int8_t *w,
                                          const tt_weight_quant *wq, int32_t accumulate,
                                          float *grad_x);
void tt_fully_connected_grad_weight_s8_mve(int32_t out_features, const tt_channels *ch,
                                           const int8_t *x, const tt_act_quant *xq,
                                           const float *grad_y, int32_t accumulate, float *grad_w);
/* The reference's arguments and bytes; every update mode four weights at a time, the
 * division by the scale made exact with fused multiply-adds from 1 / s (Markstein); any
 * weights whose floats could be subnormal the _dsp way (fully_connected_update_s8_mve.c).
 * No scratch. */
void tt_fully_connected_update_weight_s8_mve(int32_t out_features, const tt_channels *ch, int8_t *w,
                                             const tt_weight_quant *wq, const int8_t *x,
                                             const tt_act_quant *xq, const float *grad_y,
                                             const tt_update *u);
#endif

/* ---- conv2d / depthwise input gradients (training, int8 graphs) ---------------------------
 * tt_conv2d_grad_input_s8_dsp / _mve: tt_conv2d_grad_input_s8's arguments and its floats,
 * bit for bit (each input gradient element takes the same products in the same order: the
 * output channel loop runs inside the element loop, the element stays in a register; why
 * this keeps every rounding is in the files' comments). _mve runs the reference where a
 * denormal could arise (Helium flushes them). No scratch (~0.5 KB of stack). */
#if defined(__ARM_FEATURE_MVE)
/* Helium's float instructions run with the standard FPSCR value (denormals flushed to
 * zero), the scalar FPU does not: the float _mve kernels take their vector path only where
 * no denormal can arise. If every nonzero d * scale (d: grad_y) and, accumulating, every
 * nonzero grad_x element has a magnitude in [2^-103, FLT_MAX], every product d * w (w an
 * int8) and every running sum is a multiple of 2^-126 (a float of magnitude >= 2^-103 has
 * an ulp >= 2^-126; an exact sum below 2^-103 of such multiples is representable), so each
 * nonzero value is at least 2^-126: normal. Otherwise the call runs the reference. */
#include <arm_mve.h>
/* The checks read the exponent fields as integers (a float compare would itself see
 * denormals as zeros), four lanes at a time, conservatively: d * scale is safe for every
 * channel when d's exponent ed satisfies ed + min(es) - 254 >= -103 and ed + max(es) - 252
 * <= 127 over the channels' scale exponents es (scales are normal and finite). */
static inline mve_pred16_t tt_gi_bad_lanes(float32x4_t v, uint32_t lo, uint32_t hi, mve_pred16_t p)
{
    const uint32x4_t b = vreinterpretq_u32_f32(v);
    const uint32x4_t e = vandq_u32(vshrq_n_u32(b, 23), vdupq_n_u32(0xFFu));
    const mve_pred16_t nonzero = vcmpneq_n_u32(vandq_u32(b, vdupq_n_u32(0x7FFFFFFFu)), 0u);
    const mve_pred16_t outside = vcmphiq_u32(vdupq_n_u32(lo), e) | vcmphiq_n_u32(e, hi);  /* e < lo or e > hi */
    return nonzero & outside & p;
}

static inline int32_t tt_gi_all_safe(const float *v, int32_t n, uint32_t lo, uint32_t hi)
{
    int32_t k;
    mve_pred16_t bad = 0;
    for (k = 0; k < n; k += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(n - k));
        bad |= tt_gi_bad_lanes(vldrwq_z_f32(v + k, p), lo, hi, p);
    }
    return bad == 0;
}

static inline int32_t tt_grad_input_vector_safe(const tt_conv_shape *s, const float *grad_y,
                                                const tt_weight_quant *wq, int32_t accumulate,
                                                const float *grad_x)
{
    const int32_t nscale = wq->per_channel ? s->out->c : 1;
    int32_t es_min = 255, es_max = 0, o, lo, hi;
    for (o = 0; o < nscale; ++o) {
        uint32_t b;
        int32_t e;
        memcpy(&b, &wq->scale[o], 4);
        e = (int32_t)((b >> 23) & 0xFFu);
        if (e == 0 || e == 255) return 0;       /* a zero, denormal or non-finite scale */
        es_min = e < es_min ? e : es_min;
        es_max = e > es_max ? e : es_max;
    }
    lo = 254 - 103 - es_min;       /* ed >= lo: |d * scale| >= 2^-103 */
    hi = 252 + 127 - es_max;       /* ed <= hi: |d * scale| < 2^128 */
    if (lo < 1) lo = 1;            /* d itself normal */
    if (hi > 254) hi = 254;
    if (lo > hi) return 0;
    if (!tt_gi_all_safe(grad_y, s->out->h * s->out->w * s->out->c, (uint32_t)lo, (uint32_t)hi)) return 0;
    /* accumulating: every element 0 or in [2^-103, FLT_MAX] */
    return !accumulate || tt_gi_all_safe(grad_x, s->in->h * s->in->w * s->in->c, 127u - 103u, 254u);
}

#endif

void tt_conv2d_grad_input_s8_dsp(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                 const tt_weight_quant *wq, int32_t accumulate, float *grad_x);
#if defined(__ARM_FEATURE_MVE)
void tt_conv2d_grad_input_s8_mve(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                 const tt_weight_quant *wq, int32_t accumulate, float *grad_x);
#endif

/* tt_depthwise_conv2d_grad_input_s8_dsp / _mve: the reference's arguments and floats. The
 * channels are independent, so a group of eight channels at a time runs the whole window
 * walk (each element still takes its taps in the reference's order): the group's weights
 * converted to float once per call, d = grad_y * scale once per pixel instead of per tap.
 * Kernels of more than TT_DW_GI_MAX_TAPS taps run the reference. ~1.6 KB of stack. */
#define TT_DW_GI_MAX_TAPS 49
void tt_depthwise_conv2d_grad_input_s8_dsp(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                           const tt_weight_quant *wq, int32_t accumulate, float *grad_x);
#if defined(__ARM_FEATURE_MVE)
void tt_depthwise_conv2d_grad_input_s8_mve(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                                           const tt_weight_quant *wq, int32_t accumulate, float *grad_x);
#endif

/* ---- conv2d / depthwise weight gradients and fused QAS updates (training, int8 graphs) ----
 * tt_conv2d_grad_weight_s8_dsp / _mve, tt_conv2d_update_weight_s8_dsp / _mve,
 * tt_depthwise_conv2d_grad_weight_s8_dsp, tt_depthwise_conv2d_update_weight_s8_dsp: the
 * reference's arguments (scratch included), floats and bytes in every update mode
 * (tt_update_rows.h has the arrangement: pixel lists, the rule with its mode decided once
 * per run). */
void tt_conv2d_grad_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                  const tt_act_quant *xq, const float *grad_y, int32_t accumulate,
                                  float *grad_w);
void tt_conv2d_update_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch, int8_t *w,
                                    const tt_weight_quant *wq, const int8_t *x,
                                    const tt_act_quant *xq, const float *grad_y, const tt_update *u,
                                    float *scratch);
void tt_depthwise_conv2d_grad_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch,
                                            const int8_t *x, const tt_act_quant *xq,
                                            const float *grad_y, int32_t accumulate, float *grad_w);
void tt_depthwise_conv2d_update_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch,
                                              int8_t *w, const tt_weight_quant *wq, const int8_t *x,
                                              const tt_act_quant *xq, const float *grad_y,
                                              const tt_update *u, float *scratch);
#if defined(__ARM_FEATURE_MVE)
void tt_conv2d_grad_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                  const tt_act_quant *xq, const float *grad_y, int32_t accumulate,
                                  float *grad_w);
void tt_conv2d_update_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch, int8_t *w,
                                    const tt_weight_quant *wq, const int8_t *x,
                                    const tt_act_quant *xq, const float *grad_y, const tt_update *u,
                                    float *scratch);
/* The depthwise _mve pair: the trained channels in vector lanes, sixteen at a time (any
 * count: the last group is predicated), over blocks of 16 output pixels' d, the update's
 * rule four weights at a time (tt_update_mve.h); the reference's arguments (the update's
 * scratch: kh * kw floats, as the reference's) and its floats and bytes. Where a subnormal
 * could arise (Helium flushes them) a group goes on in scalar, and an accumulating call
 * whose old grad_w has an element outside {0} U [2^-103, FLT_MAX] (or a -0) runs the _dsp
 * variant; an update of more than 50 taps too (12 taps take 16 lanes, 25 taps 8, 50 taps
 * 4). ~1.6 KB of stack (grad_weight), ~2.7 KB (update_weight). */
void tt_depthwise_conv2d_grad_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch,
                                            const int8_t *x, const tt_act_quant *xq,
                                            const float *grad_y, int32_t accumulate, float *grad_w);
void tt_depthwise_conv2d_update_weight_s8_mve(const tt_conv_shape *s, const tt_channels *ch,
                                              int8_t *w, const tt_weight_quant *wq, const int8_t *x,
                                              const tt_act_quant *xq, const float *grad_y,
                                              const tt_update *u, float *scratch);
#endif

/* ---- add (equal shapes) -------------------------------------------------------------------
 * tt_add_s8_mve: tt_add_s8's arguments and bytes, four elements per step in int32 lanes
 * (the reference's integer steps; add_s8_mve.c). */
#if defined(__ARM_FEATURE_MVE)
void tt_add_s8_mve(const int8_t *a, const int8_t *b, int32_t n, const tt_add_params *p, int8_t *y);
#endif

/* ---- pointwise_depthwise_conv2d (1x1 conv fused with the depthwise conv reading it) -----
 * tt_pointwise_depthwise_conv2d_s8_dsp / _mve: the reference's arguments and ring (ring_rows
 * rows of in->w * mid_c bytes), plus the requantisation tables (_dsp) and a scratch for the
 * pointwise rows: tt_conv2d_s8_dsp_scratch_bytes(1, 1, in->c) /
 * tt_conv2d_s8_mve_scratch_bytes(1, 1, in->c, mid_c). Kernels beyond the depthwise blocks'
 * limits (kh > TT_DW_MAX_KH or more than 49 taps) run the reference. */
void tt_pointwise_depthwise_conv2d_s8_dsp(const int8_t *x, const tt_dims *in,
                                          const int8_t *w_pw, const int32_t *b_pw,
                                          const tt_requant *q_pw, const tt_rq_dsp *rq_pw, int32_t mid_c,
                                          const int8_t *w_dw, const int32_t *b_dw,
                                          int32_t kh, int32_t kw, const tt_geom *g,
                                          const tt_requant *q_dw, const tt_rq_dsp *rq_dw,
                                          int8_t *y, const tt_dims *out,
                                          int8_t *ring, int32_t ring_rows, void *scratch);
#if defined(__ARM_FEATURE_MVE)
void tt_pointwise_depthwise_conv2d_s8_mve(const int8_t *x, const tt_dims *in,
                                          const int8_t *w_pw, const int32_t *b_pw,
                                          const tt_requant *q_pw, int32_t mid_c,
                                          const int8_t *w_dw, const int32_t *b_dw,
                                          int32_t kh, int32_t kw, const tt_geom *g,
                                          const tt_requant *q_dw,
                                          int8_t *y, const tt_dims *out,
                                          int8_t *ring, int32_t ring_rows, void *scratch);
#endif

#endif
