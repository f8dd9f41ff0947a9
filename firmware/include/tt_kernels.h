/* tinytrain C runtime: forward kernels, one per op and data type (one file each,
 * firmware/kernels/<op>_<type>.c). int8 kernels follow TFLite's reference quantized
 * semantics bit for bit; float32 kernels are plain C. */
#ifndef TT_KERNELS_H
#define TT_KERNELS_H

#include "tt_types.h"

/* ---- int8 ---------------------------------------------------------------------- */
void tt_conv2d_s8(const int8_t *x, const tt_dims *in,
                  const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                  const tt_geom *g, const tt_requant *q,
                  int8_t *y, const tt_dims *out);
void tt_depthwise_conv2d_s8(const int8_t *x, const tt_dims *in,
                            const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                            const tt_geom *g, const tt_requant *q,
                            int8_t *y, const tt_dims *out);
void tt_fully_connected_s8(const int8_t *x, int32_t in_features,
                           const int8_t *w, const int32_t *bias, int32_t out_features,
                           const tt_requant *q, int8_t *y);
/* y = clamp(requant(a) + requant(b)), TFLite's int8 ADD with left_shift 20. */
typedef struct {
    int32_t a_zp, b_zp, out_zp;
    int32_t a_mult, a_shift, b_mult, b_shift, out_mult, out_shift;
    int32_t left_shift;
    int32_t act_min, act_max;
} tt_add_params;
void tt_add_s8(const int8_t *a, const int8_t *b, int32_t n, const tt_add_params *p, int8_t *y);
void tt_add_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, const tt_add_params *p, int8_t *y);
void tt_avg_pool2d_s8(const int8_t *x, const tt_dims *in, int32_t kh, int32_t kw,
                      const tt_geom *g, int32_t act_min, int32_t act_max,
                      int8_t *y, const tt_dims *out);
void tt_max_pool2d_s8(const int8_t *x, const tt_dims *in, int32_t kh, int32_t kw,
                      const tt_geom *g, int32_t act_min, int32_t act_max,
                      int8_t *y, const tt_dims *out);
/* Mean over H and W. q->multiplier[0]/shift[0] rescale the sum of (x - in_zp) to the
 * output mean (in_scale / out_scale, 1/(H*W) folded in as LiteRT does it), from
 * tinytrain.quant.global_avg_pool_params. */
void tt_global_avg_pool_s8(const int8_t *x, const tt_dims *in, const tt_requant *q, int8_t *y);
/* Standalone relu/relu6 with requantization (TFLite's int8 RELU/RELU6). */
void tt_relu_s8(const int8_t *x, int32_t n, const tt_requant *q, int8_t *y);
typedef struct {
    int32_t input_multiplier, input_left_shift, diff_min;
} tt_softmax_params;
void tt_softmax_s8(const int8_t *x, int32_t rows, int32_t depth, const tt_softmax_params *p, int8_t *y);
void tt_pad_s8(const int8_t *x, const tt_dims *in, int32_t pad_top, int32_t pad_left,
               int8_t pad_value, int8_t *y, const tt_dims *out);
/* Memory-saving forms (tinytrain.passes): a 1x1 conv2d fused with the depthwise conv
 * reading its output, through a ring of ring_rows expanded rows (ring_rows * in->w *
 * mid_c bytes); and a depthwise conv that may write over its input, through a scratch
 * `plane` of in->h * in->w bytes. Bit-identical to the unfused / out-of-place kernels. */
void tt_pointwise_depthwise_conv2d_s8(const int8_t *x, const tt_dims *in,
                                      const int8_t *w_pw, const int32_t *b_pw,
                                      const tt_requant *q_pw, int32_t mid_c,
                                      const int8_t *w_dw, const int32_t *b_dw,
                                      int32_t kh, int32_t kw, const tt_geom *g,
                                      const tt_requant *q_dw,
                                      int8_t *y, const tt_dims *out,
                                      int8_t *ring, int32_t ring_rows);
void tt_depthwise_conv2d_inplace_s8(const int8_t *x, const tt_dims *in,
                                    const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                                    const tt_geom *g, const tt_requant *q,
                                    int8_t *y, const tt_dims *out, int8_t *plane);
/* Hard swish x * relu6(x + 3) / 6, LiteRT's int8 reference (16-bit fixed point): the
 * parameters of its HardSwishPrepare (tinytrain.ops.hard_swish.hard_swish_params), the
 * multipliers in Q15 (int16 values held in int32 fields). */
typedef struct {
    int32_t input_zp, output_zp;
    int32_t reluish_multiplier, reluish_exponent;
    int32_t output_multiplier, output_exponent;   /* output_exponent <= 0 */
} tt_hard_swish_params;
void tt_hard_swish_s8(const int8_t *x, int32_t n, const tt_hard_swish_params *p, int8_t *y);
/* ---- binary elementwise ops: equal shapes (n elements), or broadcast (tt_bcast,
 * tt_types.h); either operand may be a constant array (tinytrain/ops/elementwise.py) ---- */
/* a - b: LiteRT's int8 SUB, ADD's rescaling (tt_add_params) with a difference. */
void tt_sub_s8(const int8_t *a, const int8_t *b, int32_t n, const tt_add_params *p, int8_t *y);
void tt_sub_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, const tt_add_params *p, int8_t *y);
/* a * b: LiteRT's int8 MUL, one multiplier for (a - a_zp) * (b - b_zp) (tinytrain.ops.mul). */
typedef struct {
    int32_t a_zp, b_zp, out_zp;
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
} tt_mul_params;
void tt_mul_s8(const int8_t *a, const int8_t *b, int32_t n, const tt_mul_params *p, int8_t *y);
void tt_mul_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, const tt_mul_params *p, int8_t *y);
/* max / min of the raw int8 values (inputs and output share one quantization). */
void tt_maximum_s8(const int8_t *a, const int8_t *b, int32_t n, int8_t *y);
void tt_maximum_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, int8_t *y);
void tt_minimum_s8(const int8_t *a, const int8_t *b, int32_t n, int8_t *y);
void tt_minimum_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, int8_t *y);
/* prelu: x >= zp ? identity : x * alpha (alpha constant, equal-shaped or broadcast as b). */
typedef struct {
    int32_t x_zp, alpha_zp, out_zp;
    int32_t pos_mult, pos_shift, neg_mult, neg_shift;
} tt_prelu_params;
void tt_prelu_s8(const int8_t *x, const int8_t *alpha, int32_t n, const tt_prelu_params *p, int8_t *y);
void tt_prelu_bcast_s8(const int8_t *x, const int8_t *alpha, const tt_bcast *bc, const tt_prelu_params *p,
                       int8_t *y);
/* leaky relu: LiteRT's QuantizeLeakyRelu (tinytrain.ops.leaky_relu.leaky_relu_params). */
typedef struct {
    int32_t in_zp, out_zp;
    int32_t alpha_mult, alpha_shift, alpha_negative;
    int32_t identity_mult, identity_shift;
} tt_leaky_relu_params;
void tt_leaky_relu_s8(const int8_t *x, int32_t n, const tt_leaky_relu_params *p, int8_t *y);
/* y = lut[x + 128]: LiteRT's table-lookup activations (logistic, tanh), the table computed
 * at compile time as LiteRT's Prepare does (tinytrain/ops/lut.py). */
void tt_lut_s8(const int8_t *x, int32_t n, const int8_t *lut, int8_t *y);
/* One input of a concatenation: `outer` blocks of in_block elements into the output's blocks
 * of out_block elements, at element `offset` (one call per input). */
void tt_concatenation_s8(const int8_t *x, int32_t outer, int32_t in_block, int32_t out_block, int32_t offset,
                         int8_t *y);
void tt_quantize_f32_s8(const float *x, int32_t n, float scale, int32_t zp, int8_t *y);
void tt_dequantize_s8_f32(const int8_t *x, int32_t n, float scale, int32_t zp, float *y);

/* ---- float32 ------------------------------------------------------------------- */
/* act: 0 none, 1 relu, 2 relu6 */
void tt_conv2d_f32(const float *x, const tt_dims *in,
                   const float *w, const float *bias, int32_t kh, int32_t kw,
                   const tt_geom *g, int32_t act, float *y, const tt_dims *out);
void tt_depthwise_conv2d_f32(const float *x, const tt_dims *in,
                             const float *w, const float *bias, int32_t kh, int32_t kw,
                             const tt_geom *g, int32_t act, float *y, const tt_dims *out);
void tt_fully_connected_f32(const float *x, int32_t in_features,
                            const float *w, const float *bias, int32_t out_features,
                            int32_t act, float *y);
void tt_add_f32(const float *a, const float *b, int32_t n, int32_t act, float *y);
void tt_add_bcast_f32(const float *a, const float *b, const tt_bcast *bc, int32_t act, float *y);
void tt_sub_f32(const float *a, const float *b, int32_t n, int32_t act, float *y);
void tt_sub_bcast_f32(const float *a, const float *b, const tt_bcast *bc, int32_t act, float *y);
void tt_mul_f32(const float *a, const float *b, int32_t n, int32_t act, float *y);
void tt_mul_bcast_f32(const float *a, const float *b, const tt_bcast *bc, int32_t act, float *y);
void tt_maximum_f32(const float *a, const float *b, int32_t n, float *y);
void tt_maximum_bcast_f32(const float *a, const float *b, const tt_bcast *bc, float *y);
void tt_minimum_f32(const float *a, const float *b, int32_t n, float *y);
void tt_minimum_bcast_f32(const float *a, const float *b, const tt_bcast *bc, float *y);
void tt_prelu_f32(const float *x, const float *alpha, int32_t n, float *y);
void tt_prelu_bcast_f32(const float *x, const float *alpha, const tt_bcast *bc, float *y);
void tt_leaky_relu_f32(const float *x, int32_t n, float alpha, float *y);
/* logistic 1 / (1 + exp(-x)) and tanh, with tt_math.h's expf (the same bits on every target). */
void tt_logistic_f32(const float *x, int32_t n, float *y);
void tt_tanh_f32(const float *x, int32_t n, float *y);
void tt_concatenation_f32(const float *x, int32_t outer, int32_t in_block, int32_t out_block, int32_t offset,
                          float *y);
void tt_avg_pool2d_f32(const float *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, float *y, const tt_dims *out);
void tt_max_pool2d_f32(const float *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, float *y, const tt_dims *out);
void tt_global_avg_pool_f32(const float *x, const tt_dims *in, float *y);
void tt_relu_f32(const float *x, int32_t n, int32_t act, float *y);
void tt_hard_swish_f32(const float *x, int32_t n, float *y);
void tt_softmax_f32(const float *x, int32_t rows, int32_t depth, float *y);
void tt_pad_f32(const float *x, const tt_dims *in, int32_t pad_top, int32_t pad_left,
                float *y, const tt_dims *out);

/* ---- float16 (precision fp16 / mixed): half storage (tt_f16 bits), portable kernels
 * compute in float32 in the order of their float32 twins and round each result to half once
 * (tt_f16.h); tinytrain/ops/f16.py is their numpy twin, bit for bit. act as float32. ---- */
void tt_conv2d_f16(const tt_f16 *x, const tt_dims *in, const tt_f16 *w, const tt_f16 *bias,
                   int32_t kh, int32_t kw, const tt_geom *g, int32_t act, tt_f16 *y,
                   const tt_dims *out);
void tt_depthwise_conv2d_f16(const tt_f16 *x, const tt_dims *in, const tt_f16 *w,
                             const tt_f16 *bias, int32_t kh, int32_t kw, const tt_geom *g,
                             int32_t act, tt_f16 *y, const tt_dims *out);
void tt_fully_connected_f16(const tt_f16 *x, int32_t in_features, const tt_f16 *w,
                            const tt_f16 *bias, int32_t out_features, int32_t act, tt_f16 *y);
void tt_max_pool2d_f16(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out);
/* Its Helium variant (pool2d/max_pool2d_f16_mve.c: the same bits). */
void tt_max_pool2d_f16_mve(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out);
void tt_avg_pool2d_f16(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                       const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out);
void tt_global_avg_pool_f16(const tt_f16 *x, const tt_dims *in, tt_f16 *y);
/* Their Helium variants (pool2d/avg_pool2d_f16_mve.c, mean/global_avg_pool_f16_mve.c: the same
 * bits). */
void tt_avg_pool2d_f16_mve(const tt_f16 *x, const tt_dims *in, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out);
void tt_global_avg_pool_f16_mve(const tt_f16 *x, const tt_dims *in, tt_f16 *y);
void tt_add_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y);
void tt_add_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y);
void tt_sub_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y);
void tt_sub_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y);
void tt_softmax_f16(const tt_f16 *x, int32_t rows, int32_t depth, tt_f16 *y);
void tt_relu_f16(const tt_f16 *x, int32_t n, int32_t act, tt_f16 *y);
void tt_pad_f16(const tt_f16 *x, const tt_dims *in, int32_t pad_top, int32_t pad_left,
                tt_f16 *y, const tt_dims *out);
/* The shape ops in half (their float32 twins' arguments): concatenation, strided slice and
 * nearest resize copy halves (exact); bilinear resize and transposed convolution compute in
 * float32 in their twins' order and round each output to half once. */
void tt_concatenation_f16(const tt_f16 *x, int32_t outer, int32_t in_block, int32_t out_block, int32_t offset,
                          tt_f16 *y);
void tt_strided_slice_f16(const tt_f16 *x, const tt_dims *in, const tt_slice_params *p,
                          tt_f16 *y, const tt_dims *out);
void tt_resize_nearest_f16(const tt_f16 *x, const tt_dims *in, const int32_t *rows, const int32_t *cols,
                           tt_f16 *y, const tt_dims *out);
void tt_resize_bilinear_f16(const tt_f16 *x, const tt_dims *in,
                            const int32_t *row_index, const float *row_frac,
                            const int32_t *col_index, const float *col_frac,
                            tt_f16 *y, const tt_dims *out);
void tt_transpose_conv_f16(const tt_f16 *x, const tt_dims *in,
                           const tt_f16 *w, const tt_f16 *bias, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out);
/* Its Helium variant (transpose_conv_f16_mve.c: output channels in half lanes, fused
 * multiply-adds); scratch as tt_conv2d_f16_mve's (f16.conv2d_f16_mve_scratch_bytes). */
void tt_transpose_conv_f16_mve(const tt_f16 *x, const tt_dims *in,
                               const tt_f16 *w, const tt_f16 *bias, int32_t kh, int32_t kw,
                               const tt_geom *g, int32_t act, tt_f16 *y, const tt_dims *out,
                               void *scratch);
/* The graph's edges: float32 input -> half, half output -> float32 (cast unit). */
void tt_cast_f32_to_f16(const float *x, int32_t n, tt_f16 *y);
void tt_cast_f16_to_f32(const tt_f16 *x, int32_t n, float *y);
/* Helium variants (Cortex-M55; the same arguments): half arithmetic, fused multiply-adds in 8
 * lanes, the order documented in their files (conv2d_f16_mve.c, fully_connected_f16_mve.c).
 * The conv2d forward takes a scratch for its weights copied tap-major: kh * kw * in->c *
 * min(out->c rounded up to 8, 32) halves (tinytrain.ops.f16.conv2d_f16_mve_scratch_bytes). */
void tt_conv2d_f16_mve(const tt_f16 *x, const tt_dims *in, const tt_f16 *w, const tt_f16 *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, tt_f16 *y,
                       const tt_dims *out, void *scratch);
void tt_fully_connected_f16_mve(const tt_f16 *x, int32_t in_features, const tt_f16 *w,
                                const tt_f16 *bias, int32_t out_features, int32_t act, tt_f16 *y);
void tt_depthwise_conv2d_f16_mve(const tt_f16 *x, const tt_dims *in, const tt_f16 *w,
                                 const tt_f16 *bias, int32_t kh, int32_t kw, const tt_geom *g,
                                 int32_t act, tt_f16 *y, const tt_dims *out);
/* add_f16_mve.c: vaddq_f16, the same bits as tt_add_f16 (one rounding of the exact sum). */
void tt_add_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y);
/* mul, maximum / minimum in half (mul/mul_f16.c, maximum/maximum_f16.c: the product rounded
 * once; the larger / smaller operand's bits, as the float32 kernels select it) and their
 * Helium variants (vmulq_f16, compares and selects in 8 half lanes: the same bits). */
void tt_mul_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y);
void tt_mul_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y);
void tt_maximum_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y);
void tt_maximum_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y);
void tt_minimum_f16(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y);
void tt_minimum_bcast_f16(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y);
void tt_mul_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, int32_t act, tt_f16 *y);
void tt_mul_bcast_f16_mve(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, int32_t act, tt_f16 *y);
void tt_maximum_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y);
void tt_maximum_bcast_f16_mve(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y);
void tt_minimum_f16_mve(const tt_f16 *a, const tt_f16 *b, int32_t n, tt_f16 *y);
void tt_minimum_bcast_f16_mve(const tt_f16 *a, const tt_f16 *b, const tt_bcast *bc, tt_f16 *y);
/* Activations in half (leaky relu, prelu, hard swish, logistic, tanh): portable kernels in
 * float, one rounding to half; alpha is a half (tinytrain/ops/<op>.py models each). */
void tt_leaky_relu_f16(const tt_f16 *x, int32_t n, tt_f16 alpha, tt_f16 *y);
void tt_prelu_f16(const tt_f16 *x, const tt_f16 *alpha, int32_t n, tt_f16 *y);
void tt_prelu_bcast_f16(const tt_f16 *x, const tt_f16 *alpha, const tt_bcast *bc, tt_f16 *y);
void tt_hard_swish_f16(const tt_f16 *x, int32_t n, tt_f16 *y);
void tt_logistic_f16(const tt_f16 *x, int32_t n, tt_f16 *y);
void tt_tanh_f16(const tt_f16 *x, int32_t n, tt_f16 *y);
/* Their Helium variants: leaky relu and prelu store the portable kernels' bits (a product of
 * two halves rounded once), hard swish computes in half (hard_swish_f16_mve.c, its own model). */
void tt_leaky_relu_f16_mve(const tt_f16 *x, int32_t n, tt_f16 alpha, tt_f16 *y);
void tt_prelu_f16_mve(const tt_f16 *x, const tt_f16 *alpha, int32_t n, tt_f16 *y);
void tt_prelu_bcast_f16_mve(const tt_f16 *x, const tt_f16 *alpha, const tt_bcast *bc, tt_f16 *y);
void tt_hard_swish_f16_mve(const tt_f16 *x, int32_t n, tt_f16 *y);
/* The FP32 Helium baseline of bench/bench_fp16.py (conv2d_f32_mve.c; no build selects it);
 * scratch: kh * kw * in->c * min(out->c rounded up to 4, 16) floats. */
void tt_conv2d_f32_mve(const float *x, const tt_dims *in, const float *w, const float *bias,
                       int32_t kh, int32_t kw, const tt_geom *g, int32_t act, float *y,
                       const tt_dims *out, void *scratch);

/* ---- resampling and windows (transpose_conv, resize, strided_slice): int8 and float32 --- */
/* Transposed convolution (TFLite TRANSPOSE_CONV): x HWC, w OHWI (out->c, kh, kw, in->c),
 * bias per output channel (may be NULL). Input pixel (iy, ix) reaches output (iy*stride -
 * pad + ky, ix*stride - pad + kx); g->pad_top/pad_left as TFLite computes them on the output
 * size (g->dil_* unused). int8: LiteRT's reference_integer_ops::TransposeConv, q per output
 * channel; float32: act as tt_conv2d_f32's. */
void tt_transpose_conv_s8(const int8_t *x, const tt_dims *in,
                          const int8_t *w, const int32_t *bias, int32_t kh, int32_t kw,
                          const tt_geom *g, const tt_requant *q,
                          int8_t *y, const tt_dims *out);
void tt_transpose_conv_f32(const float *x, const tt_dims *in,
                           const float *w, const float *bias, int32_t kh, int32_t kw,
                           const tt_geom *g, int32_t act, float *y, const tt_dims *out);
/* Nearest-neighbour resize: output pixel (oy, ox) copies input pixel (rows[oy], cols[ox]),
 * per-axis source tables from tinytrain.ops.resize (LiteRT's GetNearestNeighbor, or the
 * integer repeat of an UpSampling). */
void tt_resize_nearest_s8(const int8_t *x, const tt_dims *in, const int32_t *rows, const int32_t *cols,
                          int8_t *y, const tt_dims *out);
void tt_resize_nearest_f32(const float *x, const tt_dims *in, const int32_t *rows, const int32_t *cols,
                           float *y, const tt_dims *out);
/* Bilinear resize. Per axis: index[0..n) the lower and index[n..2n) the upper source index
 * of each output index; frac the source coordinate minus the lower index: int8 in 1/1024
 * units (LiteRT's ResizeBilinearInteger, rounding half away from zero), float32 as a
 * fraction (LiteRT's ResizeBilinear). Tables from tinytrain.ops.resize. */
void tt_resize_bilinear_s8(const int8_t *x, const tt_dims *in,
                           const int32_t *row_index, const int32_t *row_frac,
                           const int32_t *col_index, const int32_t *col_frac,
                           int8_t *y, const tt_dims *out);
void tt_resize_bilinear_f32(const float *x, const tt_dims *in,
                            const int32_t *row_index, const float *row_frac,
                            const int32_t *col_index, const float *col_frac,
                            float *y, const tt_dims *out);
/* Strided slice: y[i][j][k] = x[begin_h + i*stride_h][begin_w + j*stride_w][begin_c +
 * k*stride_c] (tt_slice_params, tt_types.h), out gives the counts. */
void tt_strided_slice_s8(const int8_t *x, const tt_dims *in, const tt_slice_params *p,
                         int8_t *y, const tt_dims *out);
void tt_strided_slice_f32(const float *x, const tt_dims *in, const tt_slice_params *p,
                          float *y, const tt_dims *out);

#endif
