/* tinytrain C runtime: training kernels (backward, activation masks, losses, updates).
 * One file per op and data type: firmware/kernels/<op>_backward_<type>.c, ...
 *
 * Gradients are always float32, w.r.t. REAL values. Two graph modes:
 *   _f32  float graphs: float activations and weights.
 *   _s8   int8 graphs: the kernel reads int8 saved activations / int8 weights and
 *         dequantizes on the fly: x_real = x_scale * (x_q - x_zp),
 *         W_real[o] = w_scale[o] * W_q[o] (w_scale[0] for all o when per_channel == 0).
 * (_f16 variants will follow the same naming and argument order.)
 *
 * Layouts as in tt_kernels.h: activations HWC, conv2d weights OHWI, depthwise HWC,
 * fully connected OI. Weight gradients are compact over the trained input channels:
 *   conv2d      (out_c, kh, kw, k_in)
 *   depthwise   (kh, kw, k_ch)          the first k_ch channels (or ch_index[0..k_ch))
 *   fc          (out_f, k_in)
 *
 * Partial-channel (sparse) update: only k_in input channels of a weight are trained.
 * The activation a weight gradient reads may be the full input (in->c == in_channels)
 * or a saved copy of the trained channels only (in->c == k_in, see tt_save_channels_*):
 * the kernels read channels 0..k_in-1 of each pixel of x, whatever in->c is.
 * `ch_index` (nullable) names the weight input channel trained channel j maps to
 * (NULL: channel j itself); it only changes which weights an update writes.
 *
 * `accumulate`: 0 overwrites the destination, 1 adds into it (a tensor read by two ops
 * receives the sum of both gradients).
 *
 * In-place update ("operator reordering"), per trained layer during the backward:
 *   1. tt_mask_apply_f32(grad_y, ...)            fused activation: zero where masked
 *   2. tt_<op>_grad_input_<t>(...)               with the OLD weights (before 3.)
 *   3. tt_<op>_update_weight_<t>(...)            per output channel: weight gradient
 *                                                into `scratch`, then update at once
 *   4. tt_<op>_grad_bias_f32 + bias update       any time after 1.
 * No full weight-gradient buffer is needed; scratch sizes: TT_*_UPDATE_SCRATCH.
 *
 * Update rules (element-wise, float32, in this order of operations; tt_update_rules.h):
 *   SGD (float):  g = grad + wd * w;  if (m_buf) { m = momentum * m + g; g = m; }
 *                 w = w - lr * g.     (momentum is ignored when m_buf is NULL)
 *   QAS (int8 weight q with scale s = w_scale[o]; int32 bias with s = w_scale[o] * x_scale):
 *                 g = grad_real / s;  g = g + wd * v;  if (m_buf) { m = momentum * m + g; g = m; }
 *                 step = lr * g
 *   and then, by the parameter's update mode (tt_qas_state; NULL = nearest):
 *     nearest:    q = sat(round_half_away(q - step)), rounded exactly (the difference is
 *                 not first rounded to float); v = q. A step under half a quantization
 *                 step is lost.
 *     shadow:     v = shadow (float copy of q in the quantized domain, init: (float)q);
 *                 shadow = clamp(shadow - step, qmin, qmax); q = round_half_away(shadow).
 *     residual:   8 more bits of fraction r (int8) per element: the value is q + r / 256,
 *                 v = that value; 256 q + r - 256 step is rounded exactly to an integer
 *                 and split again into q (nearest) and r in [-128, 127].
 *     stochastic: q = floor(q - step) + 1 with probability frac(q - step), else
 *                 floor(q - step) (unbiased), drawn from the model's counter-based PRNG
 *                 (tt_rng: element e of an update draws hash(state + (e + 1) * gamma); the
 *                 update then advances the state by its element count); v = q.
 *   int8 weights saturate to [-127, 127] (TFLite's symmetric weight range), int32
 *   biases to the int32 range. A NaN step leaves the parameter unchanged. Momentum buffers,
 *   shadows and residuals have the layout of the weight gradient (compact over trained
 *   channels) for fused updates, and of the updated array for the plain update functions.
 */
#ifndef TT_TRAIN_KERNELS_H
#define TT_TRAIN_KERNELS_H

#include "tt_types.h"

/* ---- update modes of quantized parameters (codes shared with tinytrain/training/qas.py
 * UPDATE_MODES and the generated model.h's TT_UPDATE_MODE) ----------------------------- */
#define TT_UPDATE_FLOAT      0   /* float parameters: plain SGD, no mode */
#define TT_UPDATE_NEAREST    1   /* round to nearest: no extra memory */
#define TT_UPDATE_SHADOW     2   /* fp32 shadow: 4 B per trained element */
#define TT_UPDATE_RESIDUAL   3   /* 8-bit fraction residual: 1 B per trained element */
#define TT_UPDATE_STOCHASTIC 4   /* stochastic rounding: the PRNG state only */

typedef struct {
    uint32_t state;              /* Weyl-sequence counter (tt_update_rules.h) */
} tt_rng;

/* What an update of one quantized parameter keeps besides the parameter. */
typedef struct {
    uint8_t mode;                /* TT_UPDATE_NEAREST .. TT_UPDATE_STOCHASTIC */
    float *shadow;               /* TT_UPDATE_SHADOW: one float per trained element */
    int8_t *residual;            /* TT_UPDATE_RESIDUAL: 1/256 units per trained element */
    tt_rng *rng;                 /* TT_UPDATE_STOCHASTIC: the model's stream */
} tt_qas_state;

/* ---- scratch and mask sizes (in elements / bytes) --------------------------------- */
#define TT_MASK_BYTES(n)                          (((n) + 7) / 8)
#define TT_CONV2D_UPDATE_SCRATCH(kh, kw, k_in)    ((kh) * (kw) * (k_in))   /* floats */
#define TT_DEPTHWISE_UPDATE_SCRATCH(kh, kw)       ((kh) * (kw))            /* floats */
#define TT_FULLY_CONNECTED_UPDATE_SCRATCH         0                        /* none */

/* ---- forward helpers the backward needs ---------------------------------------------
 * 1-bit masks, packed LSB first, 8 per byte (bit i of element i is mask[i/8] >> (i%8)).
 * relu: y > 0; relu6: 0 < y < 6; int8 clamp: lo < y < hi (not saturated). */
void tt_mask_relu_f32(const float *y, int32_t n, uint8_t *mask);
void tt_mask_relu6_f32(const float *y, int32_t n, uint8_t *mask);
void tt_mask_clamp_s8(const int8_t *y, int32_t n, int32_t lo, int32_t hi, uint8_t *mask);
/* Zero grad[i] where mask bit i is 0. */
void tt_mask_apply_f32(float *grad, int32_t n, const uint8_t *mask);
/* Copy k of the c channels of each of `pixels` pixels: channels ch_index[0..k) or, with
 * ch_index NULL, the first k. dst is (pixels, k). */
void tt_save_channels_f32(const float *x, int32_t pixels, int32_t c, int32_t k,
                          const int32_t *ch_index, float *dst);
void tt_save_channels_s8(const int8_t *x, int32_t pixels, int32_t c, int32_t k,
                         const int32_t *ch_index, int8_t *dst);

/* ---- conv2d ------------------------------------------------------------------------- */
/* grad_x (in) = transposed conv of grad_y (out) with w (out->c, kh, kw, in->c). */
void tt_conv2d_grad_input_f32(const float *grad_y, const tt_dims *out,
                              const float *w, int32_t kh, int32_t kw, const tt_geom *g,
                              int32_t accumulate, float *grad_x, const tt_dims *in);
void tt_conv2d_grad_input_s8(const float *grad_y, const tt_dims *out,
                             const int8_t *w, const float *w_scale, int32_t per_channel,
                             int32_t kh, int32_t kw, const tt_geom *g,
                             int32_t accumulate, float *grad_x, const tt_dims *in);
/* grad_w (out->c, kh, kw, k_in) from x (in; channels 0..k_in-1 read) and grad_y (out).
 * in->h, in->w are the conv input's spatial size. */
void tt_conv2d_grad_weight_f32(const float *x, const tt_dims *in,
                               const float *grad_y, const tt_dims *out,
                               int32_t kh, int32_t kw, const tt_geom *g, int32_t k_in,
                               int32_t accumulate, float *grad_w);
void tt_conv2d_grad_weight_s8(const int8_t *x, const tt_dims *in, float x_scale, int32_t x_zp,
                              const float *grad_y, const tt_dims *out,
                              int32_t kh, int32_t kw, const tt_geom *g, int32_t k_in,
                              int32_t accumulate, float *grad_w);
/* grad_b[c] = sum over H, W of grad_y (out); also the depthwise bias gradient. */
void tt_conv2d_grad_bias_f32(const float *grad_y, const tt_dims *out,
                             int32_t accumulate, float *grad_b);
/* Fused weight gradient + update, one output channel at a time (scratch:
 * TT_CONV2D_UPDATE_SCRATCH(kh, kw, k_in) floats). w is (out->c, kh, kw, in_channels);
 * trained weights w[o][ky][kx][ch_index ? ch_index[j] : j], j < k_in.
 * m_buf (nullable) and the update state's arrays (qs nullable, _s8 only) are
 * (out->c, kh, kw, k_in). */
void tt_conv2d_update_weight_f32(float *w, int32_t in_channels,
                                 const float *x, const tt_dims *in,
                                 const float *grad_y, const tt_dims *out,
                                 int32_t kh, int32_t kw, const tt_geom *g,
                                 int32_t k_in, const int32_t *ch_index,
                                 float lr, float momentum, float weight_decay,
                                 float *m_buf, float *scratch);
void tt_conv2d_update_weight_s8(int8_t *w, int32_t in_channels,
                                const float *w_scale, int32_t per_channel,
                                const int8_t *x, const tt_dims *in, float x_scale, int32_t x_zp,
                                const float *grad_y, const tt_dims *out,
                                int32_t kh, int32_t kw, const tt_geom *g,
                                int32_t k_in, const int32_t *ch_index,
                                float lr, float momentum, float weight_decay,
                                float *m_buf, const tt_qas_state *qs, float *scratch);

/* ---- depthwise_conv2d (depth multiplier 1; in->c == out->c == channels) ------------ */
void tt_depthwise_conv2d_grad_input_f32(const float *grad_y, const tt_dims *out,
                                        const float *w, int32_t kh, int32_t kw,
                                        const tt_geom *g, int32_t accumulate,
                                        float *grad_x, const tt_dims *in);
void tt_depthwise_conv2d_grad_input_s8(const float *grad_y, const tt_dims *out,
                                       const int8_t *w, const float *w_scale, int32_t per_channel,
                                       int32_t kh, int32_t kw, const tt_geom *g,
                                       int32_t accumulate, float *grad_x, const tt_dims *in);
/* grad_w (kh, kw, k_ch): channel j reads x channel j (of in->c) and grad_y channel
 * ch_index ? ch_index[j] : j (of out->c). */
void tt_depthwise_conv2d_grad_weight_f32(const float *x, const tt_dims *in,
                                         const float *grad_y, const tt_dims *out,
                                         int32_t kh, int32_t kw, const tt_geom *g,
                                         int32_t k_ch, const int32_t *ch_index,
                                         int32_t accumulate, float *grad_w);
void tt_depthwise_conv2d_grad_weight_s8(const int8_t *x, const tt_dims *in,
                                        float x_scale, int32_t x_zp,
                                        const float *grad_y, const tt_dims *out,
                                        int32_t kh, int32_t kw, const tt_geom *g,
                                        int32_t k_ch, const int32_t *ch_index,
                                        int32_t accumulate, float *grad_w);
#define tt_depthwise_conv2d_grad_bias_f32 tt_conv2d_grad_bias_f32
/* Fused: w is (kh, kw, channels) with channels == out->c; scratch
 * TT_DEPTHWISE_UPDATE_SCRATCH(kh, kw) floats; m_buf / the qs arrays are (kh, kw, k_ch). */
void tt_depthwise_conv2d_update_weight_f32(float *w, const float *x, const tt_dims *in,
                                           const float *grad_y, const tt_dims *out,
                                           int32_t kh, int32_t kw, const tt_geom *g,
                                           int32_t k_ch, const int32_t *ch_index,
                                           float lr, float momentum, float weight_decay,
                                           float *m_buf, float *scratch);
void tt_depthwise_conv2d_update_weight_s8(int8_t *w, const float *w_scale, int32_t per_channel,
                                          const int8_t *x, const tt_dims *in,
                                          float x_scale, int32_t x_zp,
                                          const float *grad_y, const tt_dims *out,
                                          int32_t kh, int32_t kw, const tt_geom *g,
                                          int32_t k_ch, const int32_t *ch_index,
                                          float lr, float momentum, float weight_decay,
                                          float *m_buf, const tt_qas_state *qs, float *scratch);

/* ---- fully_connected (w: out_features x in_features) -------------------------------- */
void tt_fully_connected_grad_input_f32(const float *grad_y, int32_t out_features,
                                       const float *w, int32_t in_features,
                                       int32_t accumulate, float *grad_x);
void tt_fully_connected_grad_input_s8(const float *grad_y, int32_t out_features,
                                      const int8_t *w, const float *w_scale, int32_t per_channel,
                                      int32_t in_features, int32_t accumulate, float *grad_x);
/* grad_w (out_features, k_in) = outer(grad_y, x[0..k_in)). */
void tt_fully_connected_grad_weight_f32(const float *x, int32_t k_in,
                                        const float *grad_y, int32_t out_features,
                                        int32_t accumulate, float *grad_w);
void tt_fully_connected_grad_weight_s8(const int8_t *x, int32_t k_in, float x_scale, int32_t x_zp,
                                       const float *grad_y, int32_t out_features,
                                       int32_t accumulate, float *grad_w);
/* grad_b = grad_y (n == out_features). */
void tt_fully_connected_grad_bias_f32(const float *grad_y, int32_t n,
                                      int32_t accumulate, float *grad_b);
/* Fused, no scratch: w (out_features, in_features); m_buf / qs arrays (out_features, k_in). */
void tt_fully_connected_update_weight_f32(float *w, int32_t in_features,
                                          const float *x, const float *grad_y, int32_t out_features,
                                          int32_t k_in, const int32_t *ch_index,
                                          float lr, float momentum, float weight_decay,
                                          float *m_buf);
void tt_fully_connected_update_weight_s8(int8_t *w, int32_t in_features,
                                         const float *w_scale, int32_t per_channel,
                                         const int8_t *x, float x_scale, int32_t x_zp,
                                         const float *grad_y, int32_t out_features,
                                         int32_t k_in, const int32_t *ch_index,
                                         float lr, float momentum, float weight_decay,
                                         float *m_buf, const tt_qas_state *qs);

/* ---- pooling, pad, softmax, add ------------------------------------------------------ */
/* Average over the window's in-bounds elements (padding not counted), as the forward. */
void tt_avg_pool2d_grad_input_f32(const float *grad_y, const tt_dims *out,
                                  int32_t kh, int32_t kw, const tt_geom *g,
                                  int32_t accumulate, float *grad_x, const tt_dims *in);
/* The gradient goes to the window's max (recomputed from the saved input x; on ties the
 * first in row-major window order). */
void tt_max_pool2d_grad_input_f32(const float *x, const tt_dims *in,
                                  const float *grad_y, const tt_dims *out,
                                  int32_t kh, int32_t kw, const tt_geom *g,
                                  int32_t accumulate, float *grad_x);
void tt_max_pool2d_grad_input_s8(const int8_t *x, const tt_dims *in,
                                 const float *grad_y, const tt_dims *out,
                                 int32_t kh, int32_t kw, const tt_geom *g,
                                 int32_t accumulate, float *grad_x);
/* grad_x[h][w][c] = grad_y[c] / (in->h * in->w). */
void tt_global_avg_pool_grad_input_f32(const float *grad_y, const tt_dims *in,
                                       int32_t accumulate, float *grad_x);
/* Crop: grad_x (in) = grad_y (out) without the padding. */
void tt_pad_grad_input_f32(const float *grad_y, const tt_dims *out,
                           int32_t pad_top, int32_t pad_left,
                           int32_t accumulate, float *grad_x, const tt_dims *in);
/* From the saved softmax output y (rows x depth): grad_x = y * (grad_y - sum(grad_y * y)).
 * For an int8 softmax dequantize y first (tt_dequantize_s8_f32). */
void tt_softmax_grad_input_f32(const float *y, const float *grad_y, int32_t rows, int32_t depth,
                               int32_t accumulate, float *grad_x);
/* Hard swish: grad_x = grad_y * d/dx hard_swish(x), from the saved input x (n elements; the
 * int8 form reads real values scale * (x - zp)). */
void tt_hard_swish_grad_input_f32(const float *x, int32_t n, const float *grad_y, int32_t accumulate,
                                  float *grad_x);
void tt_hard_swish_grad_input_s8(const int8_t *x, int32_t n, float scale, int32_t zp,
                                 const float *grad_y, int32_t accumulate, float *grad_x);
/* dst[i] += src[i]: the gradient of an add passes unchanged to both inputs. */
void tt_add_grad_f32(float *dst, const float *src, int32_t n);

/* ---- losses (return the loss; write d loss / d input) --------------------------------- */
/* -log softmax(logits)[label], numerically stable; grad = softmax - onehot(label). */
float tt_softmax_cross_entropy_f32(const float *logits, int32_t n, int32_t label, float *grad);
/* Same on int8 logits: real = scale * (q - zp); grad w.r.t. the real logits. */
float tt_softmax_cross_entropy_s8(const int8_t *logits, int32_t n, float scale, int32_t zp,
                                  int32_t label, float *grad);
/* mean((y - target)^2); grad = 2 (y - target) / n. */
float tt_mse_f32(const float *y, const float *target, int32_t n, float *grad);

/* ---- updates (rules at the top of this file) ------------------------------------------- */
void tt_sgd_update_f32(float *w, const float *grad, int32_t n, float lr, float momentum,
                       float weight_decay, float *m_buf);
/* Strided SGD: `rows` rows of `row_len` trained elements, row r at w + r * w_stride
 * (e.g. conv2d weights with k_in < in_channels: rows = out*kh*kw, row_len = k_in,
 * w_stride = in_channels). grad and m_buf are compact (rows, row_len). */
void tt_sgd_update_rows_f32(float *w, int32_t w_stride, const float *grad, int32_t rows,
                            int32_t row_len, float lr, float momentum, float weight_decay,
                            float *m_buf);
/* QAS update of int8 weights laid out (out_ch, spatial, in_ch) (conv2d: spatial = kh*kw;
 * fc: spatial = 1), the first k_in input channels trained; grad_real, m_buf and the qs
 * arrays (all nullable but grad_real) are (out_ch, spatial, k_in). Scale of output
 * channel o: w_scale[o] (per_channel) or w_scale[0]. */
void tt_qas_update_weight_s8(int8_t *w, const float *grad_real, int32_t out_ch, int32_t spatial,
                             int32_t in_ch, int32_t k_in, const float *w_scale, int32_t per_channel,
                             float lr, float momentum, float weight_decay,
                             float *m_buf, const tt_qas_state *qs);
/* QAS update of depthwise int8 weights (spatial, channels), the first k_ch channels
 * trained; channel c has scale w_scale[c] (per_channel) or w_scale[0]; grad_real,
 * m_buf, qs arrays are (spatial, k_ch). */
void tt_qas_update_dw_weight_s8(int8_t *w, const float *grad_real, int32_t spatial,
                                int32_t channels, int32_t k_ch, const float *w_scale,
                                int32_t per_channel, float lr, float momentum,
                                float weight_decay, float *m_buf, const tt_qas_state *qs);
/* QAS update of an int32 bias of n channels: scale w_scale[o] * x_scale. */
void tt_qas_update_bias_s32(int32_t *b, const float *grad_real, int32_t n,
                            const float *w_scale, int32_t per_channel, float x_scale,
                            float lr, float momentum, float weight_decay, float *m_buf,
                            const tt_qas_state *qs);

/* ---- bias updates from the output gradient, channel by channel (no bias-gradient
 * buffer): the gradient of channel c is the sum over the pixels of grad_y (pixels x
 * channels), in pixel order. ------------------------------------------------------------- */
void tt_bias_update_f32(float *b, const float *grad_y, int32_t pixels, int32_t channels,
                        float lr, float momentum, float weight_decay, float *m_buf);
/* scale[c]: the bias scale of channel c (float32). */
void tt_bias_update_s32(int32_t *b, const float *grad_y, int32_t pixels, int32_t channels,
                        const float *scale, float lr, float momentum, float weight_decay,
                        float *m_buf, const tt_qas_state *qs);

/* ---- update state from the parameters (tt_model_reset_optimizer) ------------------------ */
/* shadow (rows x row_len) = the trained part of int8 weights w (rows of `stride`, trained
 * channels ch_index[j] or j). */
void tt_qas_shadow_init_s8(float *shadow, const int8_t *w, int32_t rows, int32_t row_len,
                           int32_t stride, const int32_t *ch_index);
void tt_qas_shadow_init_s32(float *shadow, const int32_t *b, int32_t n);

/* ---- resampling and windows: input gradients (plain arguments, no weight updates) ------- */
/* Transposed convolution: grad_x[iy][ix][i] = sum over the taps (ky, kx) that took input
 * pixel (iy, ix) to output (iy*stride - pad + ky, ix*stride - pad + kx) inside `out`, and
 * over output channels o, of grad_y * w[o][ky][kx][i] (w OHWI; its own weights are frozen).
 * _s8: int8 weights with w_scale per output channel (per_channel) or w_scale[0]. */
void tt_transpose_conv_grad_input_f32(const float *grad_y, const tt_dims *out,
                                      const float *w, int32_t kh, int32_t kw, const tt_geom *g,
                                      int32_t accumulate, float *grad_x, const tt_dims *in);
void tt_transpose_conv_grad_input_s8(const float *grad_y, const tt_dims *out,
                                     const int8_t *w, const float *w_scale, int32_t per_channel,
                                     int32_t kh, int32_t kw, const tt_geom *g,
                                     int32_t accumulate, float *grad_x, const tt_dims *in);
/* Nearest resize: grad_y (oy, ox) added into grad_x (rows[oy], cols[ox]) (the forward's tables). */
void tt_resize_nearest_grad_input_f32(const float *grad_y, const tt_dims *out,
                                      const int32_t *rows, const int32_t *cols,
                                      int32_t accumulate, float *grad_x, const tt_dims *in);
/* Bilinear resize: grad_y spread over the four source pixels with weights (1 - wy)(1 - wx),
 * wy (1 - wx), (1 - wy) wx, wy wx; index tables as the forward's, row_weight / col_weight the
 * fractions as floats (an int8 forward's 1/1024 units divided out). */
void tt_resize_bilinear_grad_input_f32(const float *grad_y, const tt_dims *out,
                                       const int32_t *row_index, const float *row_weight,
                                       const int32_t *col_index, const float *col_weight,
                                       int32_t accumulate, float *grad_x, const tt_dims *in);
/* Strided slice: grad_y scattered into grad_x at the sliced positions, zeros elsewhere. */
void tt_strided_slice_grad_input_f32(const float *grad_y, const tt_dims *out, const tt_slice_params *p,
                                     int32_t accumulate, float *grad_x, const tt_dims *in);

#endif
