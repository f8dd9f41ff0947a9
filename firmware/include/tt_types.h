/* tinytrain C runtime: shared types of the kernels.
 * Layout: activations HWC (batch 1); conv2d weights OHWI; depthwise weights HWC;
 * fully connected weights OI. Zero points are stored as zero points (TFLite stores
 * their negation as "offsets"). */
#ifndef TT_TYPES_H
#define TT_TYPES_H

#include <stdint.h>
#include <stddef.h>

/* Alignment of arenas and constant tables (GNU C attribute, accepted with -std=c99). */
#define TT_ALIGNED(n) __attribute__((aligned(n)))

/* Data type codes (tt_param_info.dtype, the serial protocol). */
#define TT_DTYPE_S8  1
#define TT_DTYPE_S32 2
#define TT_DTYPE_F32 3
#define TT_DTYPE_F16 4

/* A half-precision (IEEE binary16) value as stored: its bits (tt_f16.h converts). */
typedef uint16_t tt_f16;

typedef struct {
    int32_t h, w, c;
} tt_dims;

/* A strided window (strided_slice forward and backward): element (i, j, k) of the window
 * is (begin_h + i*stride_h, begin_w + j*stride_w, begin_c + k*stride_c); strides non-zero,
 * may be negative. */
typedef struct {
    int32_t begin_h, begin_w, begin_c;
    int32_t stride_h, stride_w, stride_c;
} tt_slice_params;

/* Convolution geometry (conv2d, depthwise_conv2d, pooling). */
typedef struct {
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;   /* bottom/right padding follow from the output size */
    int32_t dil_h, dil_w;
} tt_geom;

/* Broadcast of a binary elementwise op (tinytrain/ops/elementwise.py): the output is walked as
 * h x w x c (batch 1); the element of operand a at output position (y, x, ch) is
 * a[y * a_sh + x * a_sw + ch * a_sc], of b likewise; a stride is 0 along an axis the operand
 * broadcasts (a scalar has all three 0, a per-channel vector (C,) has 0, 0, 1). */
typedef struct {
    int32_t h, w, c;
    int32_t a_sh, a_sw, a_sc;
    int32_t b_sh, b_sw, b_sc;
} tt_bcast;

/* Requantization of an int8 op: per-tensor (n == 1) or per output channel. */
typedef struct {
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;       /* clamp, already in the output's int8 domain */
    const int32_t *multiplier;      /* Q31 fixed-point multipliers, one per channel */
    const int32_t *shift;           /* their exponents (TFLite convention: >0 left) */
} tt_requant;

#endif
