/* tinytrain C runtime: training kernels (backward, activation masks, losses, updates).
 * Files: firmware/kernels/<op>/<op>_backward_<type>.c and firmware/kernels/train/.
 *
 * ==== Conventions ====================================================================
 * Gradients are always float32, w.r.t. REAL values. Two graph modes:
 *   _f32  float graphs: float activations and weights.
 *   _s8   int8 graphs: the kernel reads int8 saved activations / int8 weights and
 *         dequantizes on the fly: x_real = xq->scale * (x - xq->zero_point) (tt_act_quant),
 *         W_real[o] = wq->scale[o] * W[o] (tt_weight_quant; scale[0] for every o when
 *         wq->per_channel == 0).
 * Layouts as in tt_kernels.h: activations HWC (batch 1), conv2d weights OHWI, depthwise
 * HWC (depth multiplier 1), fully connected OI.
 *
 * Argument order: what describes the shapes first (tt_conv_shape, tt_channels, sizes),
 * then the inputs, each int8 operand followed by its quantization, then `accumulate` and
 * the output, or the update (tt_update) and the scratch buffer last. Every pointer
 * argument is non-NULL unless documented as nullable. No kernel allocates or keeps state.
 *
 * `accumulate`: 0 overwrites the destination, 1 adds into it (a tensor read by two ops
 * receives the sum of both gradients).
 *
 * ==== Argument structs ===============================================================
 * The generated model.c holds them as `static const` structs with designated
 * initialisers, one per distinct value (tinytrain.cgen.emitter), except the one mutable
 * tt_hparams that tt_model_set_hparams writes.
 *
 *   tt_conv_shape   window geometry of conv2d / depthwise / pooling: input and output
 *                   dims, kernel size, stride / padding / dilation (the forward's own
 *                   tt_dims and tt_geom).
 *   tt_channels     the trained input channels of a weight (partial / sparse update) and
 *                   the layout of the activation x its weight gradient reads.
 *   tt_act_quant    scale and zero point of an int8 activation.
 *   tt_weight_quant scales of int8 weights (per tensor or per output channel).
 *   tt_hparams      learning rate, momentum, weight decay.
 *   tt_update       how one parameter is updated: the hyper-parameters, its momentum
 *                   buffer and its update mode with that mode's state.
 *
 * ==== Partial-channel (sparse) update ================================================
 * Only ch->k of a weight's ch->in_channels input channels are trained: trained channel j
 * is weight input channel ch->index[j], or j when ch->index is NULL. Weight gradients,
 * momentum buffers and update state are compact over the trained channels:
 *   conv2d      (out_c, kh, kw, k)
 *   depthwise   (kh, kw, k)
 *   fc          (out_f, k)
 * The activation x a weight gradient reads holds ch->x_channels channels per pixel, of
 * which it reads channels 0..k-1: the full input (x_channels == in_channels, index NULL)
 * or a copy of the trained channels (x_channels == k, see tt_save_channels_*).
 *
 * ==== In-place update ("operator reordering"), per trained layer in the backward =====
 *   1. tt_mask_apply_f32(grad_y, ...)            fused activation: zero where masked
 *   2. tt_<op>_grad_input_<t>(...)               with the OLD weights (before 3.)
 *   3. tt_<op>_update_weight_<t>(...)            per output channel: weight gradient
 *                                                into `scratch`, then update at once
 *   4. tt_bias_update_<t>(...)                   any time after 1.
 * No full weight-gradient buffer is needed; scratch sizes: tt_<op>_update_weight_scratch.
 *
 * ==== Update rules (element-wise, float32, in this order; tt_update_rules.h) =========
 *   SGD (float):  g = grad + wd * w;  if (momentum) { m = mu * m + g; g = m; }
 *                 w = w - lr * g.     (mu is ignored when u->momentum is NULL)
 *   QAS (int8 weight q with scale s = wq->scale[o]; int32 bias with s = its scale[c]):
 *                 g = grad_real / s;  g = g + wd * v;  if (momentum) { m = mu * m + g; g = m; }
 *                 step = lr * g
 *   and then, by the parameter's update mode (u->mode):
 *     nearest:    q = sat(round_half_away(q - step)), rounded exactly (the difference is
 *                 not first rounded to float); v = q. A step under half a quantization
 *                 step is lost. (TT_UPDATE_FLOAT on an integer parameter rounds the same.)
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
 *   biases to the int32 range. A NaN step leaves the parameter unchanged. Element e of
 *   an update (its momentum, shadow, residual and random draw) is its index in the
 *   compact layout above (biases: the channel).
 */
#ifndef TT_TRAIN_KERNELS_H
#define TT_TRAIN_KERNELS_H

#include "tt_types.h"

/* ==== argument structs ============================================================== */

/* Window geometry of conv2d, depthwise_conv2d and pooling: the input `in` (the op's
 * input, all of its channels), the output `out`, a kh x kw window and its stride,
 * padding and dilation. */
typedef struct {
    const tt_dims *in, *out;
    int32_t kh, kw;
    const tt_geom *g;
} tt_conv_shape;

/* The trained input channels of a weight, and the activation its gradient reads. */
typedef struct {
    int32_t in_channels;         /* input channels of the weight (its row length) */
    int32_t k;                   /* trained channels, 1..in_channels */
    const int32_t *index;        /* nullable: trained channel j is index[j]; NULL: j */
    int32_t x_channels;          /* channels per pixel of x: in_channels or k */
} tt_channels;

/* An int8 activation: real = scale * (q - zero_point). */
typedef struct {
    float scale;
    int32_t zero_point;
} tt_act_quant;

/* int8 weights (symmetric): W_real[o] = scale[per_channel ? o : 0] * W[o]. */
typedef struct {
    const float *scale;
    int32_t per_channel;
} tt_weight_quant;

/* The optimizer's hyper-parameters (the model's one instance: tt_model_set_hparams). */
typedef struct {
    float lr, momentum, weight_decay;
} tt_hparams;

/* Update modes (codes shared with tinytrain/training/qas.py UPDATE_MODES and the generated
 * model.h's TT_UPDATE_MODE). */
#define TT_UPDATE_FLOAT      0   /* float parameters: plain SGD, no mode */
#define TT_UPDATE_NEAREST    1   /* round to nearest: no extra memory */
#define TT_UPDATE_SHADOW     2   /* fp32 shadow: 4 B per trained element */
#define TT_UPDATE_RESIDUAL   3   /* 8-bit fraction residual: 1 B per trained element */
#define TT_UPDATE_STOCHASTIC 4   /* stochastic rounding: the PRNG state only */
#define TT_UPDATE_MASTER     5   /* half parameters with an fp32 master copy (mixed precision) */

/* Loss scaling of a half-precision training step (the model's one instance): the gradient
 * entering the half backward is multiplied by `scale` (tt_cast_grad_f32_to_f16) and every
 * update divides by it. dynamic: a non-finite weight/bias gradient sets `overflow`, and the
 * step's updates from that element on are skipped; after the step
 * (tt_loss_scale_after_step) an overflow halves the scale, `interval` good steps double it. */
typedef struct {
    float scale;
    int32_t dynamic;
    int32_t overflow;
    int32_t good_steps;
    int32_t interval;
} tt_loss_scale;

typedef struct {
    uint32_t state;              /* Weyl-sequence counter (tt_update_rules.h) */
} tt_rng;

/* How one parameter is updated: everything an update keeps besides the parameter. The
 * arrays hold one element per trained element (compact layout, see the top). */
typedef struct {
    const tt_hparams *hp;        /* read once per kernel call */
    uint8_t mode;                /* TT_UPDATE_FLOAT (float) or NEAREST .. STOCHASTIC */
    float *momentum;             /* nullable: momentum buffer */
    float *shadow;               /* TT_UPDATE_SHADOW: fp32 shadow, quantized units;
                                    TT_UPDATE_MASTER: the fp32 master copy */
    int8_t *residual;            /* TT_UPDATE_RESIDUAL: 1/256 units */
    tt_rng *rng;                 /* TT_UPDATE_STOCHASTIC: the model's stream */
    tt_loss_scale *ls;           /* half parameters: the model's loss scale (else NULL) */
} tt_update;

/* ==== forward helpers the backward needs ============================================ */

/* Bytes of a 1-bit mask of n elements. */
#define TT_MASK_BYTES(n) (((n) + 7) / 8)

/**
 * 1-bit masks of an activation's output, where its derivative is 1: relu y > 0;
 * relu6 0 < y < 6; int8 clamp lo < y < hi (not saturated).
 * @param[in]  y     the output, n elements
 * @param[in]  n     element count
 * @param[in]  lo, hi  (clamp) the int8 clamp of the output
 * @param[out] mask  TT_MASK_BYTES(n) bytes, packed LSB first (bit i: mask[i/8] >> (i%8))
 */
void tt_mask_relu_f32(const float *y, int32_t n, uint8_t *mask);
void tt_mask_relu6_f32(const float *y, int32_t n, uint8_t *mask);
void tt_mask_clamp_s8(const int8_t *y, int32_t n, int32_t lo, int32_t hi, uint8_t *mask);

/**
 * Zero grad[i] where mask bit i is 0 (the backward of a fused activation).
 * @param[in,out] grad  n floats
 * @param[in]     mask  from tt_mask_*
 */
void tt_mask_apply_f32(float *grad, int32_t n, const uint8_t *mask);

/**
 * Copy the trained channels of an activation for a later weight gradient (partial update).
 * @param[in]  ch      ch->in_channels channels per pixel in x; copies ch->k of them
 *                     (ch->index[j] or the first k)
 * @param[in]  pixels  pixel count of x
 * @param[in]  x       (pixels, ch->in_channels)
 * @param[out] dst     (pixels, ch->k): the x of a tt_channels with x_channels == k
 */
void tt_save_channels_f32(const tt_channels *ch, int32_t pixels, const float *x, float *dst);
void tt_save_channels_s8(const tt_channels *ch, int32_t pixels, const int8_t *x, int8_t *dst);

/* ==== conv2d ========================================================================== */

/**
 * Input gradient of conv2d: grad_x = transposed conv of grad_y with w.
 * @param[in]  s           conv geometry; s->in is x's dims, s->out y's
 * @param[in]  grad_y      (s->out) gradient w.r.t. the output
 * @param[in]  w           (out->c, kh, kw, in->c) weights (_s8: int8, dequantized by wq)
 * @param[in]  wq          (_s8) weight scales
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      (s->in)
 */
void tt_conv2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y, const float *w,
                              int32_t accumulate, float *grad_x);
void tt_conv2d_grad_input_s8(const tt_conv_shape *s, const float *grad_y, const int8_t *w,
                             const tt_weight_quant *wq, int32_t accumulate, float *grad_x);

/**
 * Weight gradient of conv2d over the trained input channels (no update).
 * @param[in]  s           conv geometry (s->in: the conv input's spatial size)
 * @param[in]  ch          trained channels; x holds ch->x_channels channels per pixel, of
 *                         which channels 0..ch->k-1 are read
 * @param[in]  x           (in->h, in->w, ch->x_channels) (_s8: int8, dequantized by xq)
 * @param[in]  xq          (_s8) quantization of x
 * @param[in]  grad_y      (s->out)
 * @param[in]  accumulate  0: overwrite grad_w, 1: add into it
 * @param[out] grad_w      (out->c, kh, kw, ch->k)
 */
void tt_conv2d_grad_weight_f32(const tt_conv_shape *s, const tt_channels *ch, const float *x,
                               const float *grad_y, int32_t accumulate, float *grad_w);
void tt_conv2d_grad_weight_s8(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                              const tt_act_quant *xq, const float *grad_y, int32_t accumulate,
                              float *grad_w);

/* Scratch of tt_conv2d_update_weight_*: one output channel's weight gradient, in floats. */
static inline int32_t tt_conv2d_update_weight_scratch(const tt_conv_shape *s, const tt_channels *ch)
{
    return s->kh * s->kw * ch->k;
}

/**
 * Fused weight gradient + in-place update of conv2d, one output channel at a time: the
 * gradient of output channel o goes to `scratch`, then its trained weights
 * w[o][ky][kx][index ? index[j] : j], j < ch->k, are updated (rules at the top).
 * @param[in]     s        conv geometry
 * @param[in]     ch       trained channels and the layout of x (as tt_conv2d_grad_weight_*)
 * @param[in,out] w        (out->c, kh, kw, ch->in_channels) weights (_s8: int8)
 * @param[in]     wq       (_s8) weight scales: the QAS scale of output channel o
 * @param[in]     x        (in->h, in->w, ch->x_channels) the layer's input (saved)
 * @param[in]     xq       (_s8) quantization of x
 * @param[in]     grad_y   (s->out)
 * @param[in]     u        update: hyper-parameters, momentum and mode state over
 *                         (out->c, kh, kw, ch->k) elements
 * @param         scratch  tt_conv2d_update_weight_scratch(s, ch) floats
 */
void tt_conv2d_update_weight_f32(const tt_conv_shape *s, const tt_channels *ch, float *w,
                                 const float *x, const float *grad_y, const tt_update *u,
                                 float *scratch);
void tt_conv2d_update_weight_s8(const tt_conv_shape *s, const tt_channels *ch, int8_t *w,
                                const tt_weight_quant *wq, const int8_t *x,
                                const tt_act_quant *xq, const float *grad_y, const tt_update *u,
                                float *scratch);

/* ==== depthwise_conv2d (depth multiplier 1: in->c == out->c == channels) ================= */

/**
 * Input gradient of a depthwise convolution.
 * @param[in]  s           conv geometry
 * @param[in]  grad_y      (s->out)
 * @param[in]  w           (kh, kw, channels) weights (_s8: int8, dequantized by wq)
 * @param[in]  wq          (_s8) weight scales, per channel or per tensor
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      (s->in)
 */
void tt_depthwise_conv2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y,
                                        const float *w, int32_t accumulate, float *grad_x);
void tt_depthwise_conv2d_grad_input_s8(const tt_conv_shape *s, const float *grad_y,
                                       const int8_t *w, const tt_weight_quant *wq,
                                       int32_t accumulate, float *grad_x);

/**
 * Weight gradient of a depthwise convolution over the trained channels (no update):
 * trained channel j reads x channel j (of ch->x_channels) and grad_y channel
 * ch->index ? ch->index[j] : j (of out->c).
 * @param[in]  s, ch       geometry and trained channels (ch->in_channels == channels)
 * @param[in]  x, xq       (in->h, in->w, ch->x_channels) the saved input (_s8: int8 + quant)
 * @param[in]  grad_y      (s->out)
 * @param[in]  accumulate  0: overwrite grad_w, 1: add into it
 * @param[out] grad_w      (kh, kw, ch->k)
 */
void tt_depthwise_conv2d_grad_weight_f32(const tt_conv_shape *s, const tt_channels *ch,
                                         const float *x, const float *grad_y,
                                         int32_t accumulate, float *grad_w);
void tt_depthwise_conv2d_grad_weight_s8(const tt_conv_shape *s, const tt_channels *ch,
                                        const int8_t *x, const tt_act_quant *xq,
                                        const float *grad_y, int32_t accumulate, float *grad_w);

/* Scratch of tt_depthwise_conv2d_update_weight_*: one channel's kernel, in floats. */
static inline int32_t tt_depthwise_conv2d_update_weight_scratch(const tt_conv_shape *s,
                                                                const tt_channels *ch)
{
    (void)ch;
    return s->kh * s->kw;
}

/**
 * Fused weight gradient + in-place update of a depthwise convolution, one trained channel
 * at a time (gradient into `scratch`, then update; rules at the top).
 * @param[in]     s, ch    as tt_depthwise_conv2d_grad_weight_*
 * @param[in,out] w        (kh, kw, channels) weights (_s8: int8)
 * @param[in]     wq       (_s8) weight scales: the QAS scale of channel c
 * @param[in]     x, xq    the saved input (as tt_depthwise_conv2d_grad_weight_*)
 * @param[in]     grad_y   (s->out)
 * @param[in]     u        update over (kh, kw, ch->k) elements
 * @param         scratch  tt_depthwise_conv2d_update_weight_scratch(s, ch) floats
 */
void tt_depthwise_conv2d_update_weight_f32(const tt_conv_shape *s, const tt_channels *ch,
                                           float *w, const float *x, const float *grad_y,
                                           const tt_update *u, float *scratch);
void tt_depthwise_conv2d_update_weight_s8(const tt_conv_shape *s, const tt_channels *ch,
                                          int8_t *w, const tt_weight_quant *wq, const int8_t *x,
                                          const tt_act_quant *xq, const float *grad_y,
                                          const tt_update *u, float *scratch);

/* ==== fully_connected (w: out_features x in_features) ==================================== */

/**
 * Input gradient of a fully connected layer: grad_x = grad_y W.
 * @param[in]  in_features, out_features  the weight's shape (OI)
 * @param[in]  grad_y      out_features floats
 * @param[in]  w, wq       (out_features, in_features) weights (_s8: int8 + scales)
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      in_features floats
 */
void tt_fully_connected_grad_input_f32(int32_t in_features, int32_t out_features,
                                       const float *grad_y, const float *w,
                                       int32_t accumulate, float *grad_x);
void tt_fully_connected_grad_input_s8(int32_t in_features, int32_t out_features,
                                      const float *grad_y, const int8_t *w,
                                      const tt_weight_quant *wq, int32_t accumulate,
                                      float *grad_x);

/**
 * Weight gradient of a fully connected layer over the trained inputs (no update):
 * grad_w = outer(grad_y, x[0..ch->k)).
 * @param[in]  out_features
 * @param[in]  ch          trained inputs (ch->in_channels == in_features)
 * @param[in]  x, xq       the saved input, at least ch->k values (_s8: int8 + quant)
 * @param[in]  grad_y      out_features floats
 * @param[in]  accumulate  0: overwrite grad_w, 1: add into it
 * @param[out] grad_w      (out_features, ch->k)
 */
void tt_fully_connected_grad_weight_f32(int32_t out_features, const tt_channels *ch,
                                        const float *x, const float *grad_y,
                                        int32_t accumulate, float *grad_w);
void tt_fully_connected_grad_weight_s8(int32_t out_features, const tt_channels *ch,
                                       const int8_t *x, const tt_act_quant *xq,
                                       const float *grad_y, int32_t accumulate, float *grad_w);

/**
 * Fused weight gradient + in-place update of a fully connected layer (no scratch:
 * dW[o][j] = grad_y[o] * x[j]); trained weights w[o][index ? index[j] : j], j < ch->k.
 * @param[in]     out_features
 * @param[in]     ch       trained inputs (ch->in_channels == in_features)
 * @param[in,out] w        (out_features, in_features) weights (_s8: int8)
 * @param[in]     wq       (_s8) weight scales: the QAS scale of output o
 * @param[in]     x, xq    the saved input (as tt_fully_connected_grad_weight_*)
 * @param[in]     grad_y   out_features floats
 * @param[in]     u        update over (out_features, ch->k) elements
 */
void tt_fully_connected_update_weight_f32(int32_t out_features, const tt_channels *ch, float *w,
                                          const float *x, const float *grad_y, const tt_update *u);
void tt_fully_connected_update_weight_s8(int32_t out_features, const tt_channels *ch, int8_t *w,
                                         const tt_weight_quant *wq, const int8_t *x,
                                         const tt_act_quant *xq, const float *grad_y,
                                         const tt_update *u);

/* ==== biases ============================================================================ */

/**
 * Bias update from the output gradient, channel by channel (no bias-gradient buffer): the
 * gradient of channel c is the sum over the pixels of grad_y, in pixel order; then the
 * rule at the top (float: SGD; int32: QAS with scale[c]).
 * @param[in]     out     the layer's output dims (fully connected: 1 x 1 x out_features)
 * @param[in,out] b       out->c biases
 * @param[in]     scale   (_s32) out->c float scales of the int32 bias (w_scale * x_scale)
 * @param[in]     grad_y  (out) gradient w.r.t. the output
 * @param[in]     u       update over out->c elements
 */
void tt_bias_update_f32(const tt_dims *out, float *b, const float *grad_y, const tt_update *u);
void tt_bias_update_s32(const tt_dims *out, int32_t *b, const float *scale, const float *grad_y,
                        const tt_update *u);

/* ==== pooling, pad, softmax, add ========================================================= */

/**
 * Input gradient of average pooling: each output gradient is spread evenly over the
 * window's in-bounds inputs (padding not counted, as the forward).
 * @param[in]  s           pooling window (s->in: x's dims; in->c == out->c)
 * @param[in]  grad_y      (s->out)
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      (s->in)
 */
void tt_avg_pool2d_grad_input_f32(const tt_conv_shape *s, const float *grad_y,
                                  int32_t accumulate, float *grad_x);

/**
 * Input gradient of max pooling: the gradient goes to the window's max, recomputed from
 * the saved input x (on ties the first in row-major window order).
 * @param[in]  s           pooling window
 * @param[in]  x           (s->in) the saved input (_s8: int8)
 * @param[in]  grad_y      (s->out)
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      (s->in)
 */
void tt_max_pool2d_grad_input_f32(const tt_conv_shape *s, const float *x, const float *grad_y,
                                  int32_t accumulate, float *grad_x);
void tt_max_pool2d_grad_input_s8(const tt_conv_shape *s, const int8_t *x, const float *grad_y,
                                 int32_t accumulate, float *grad_x);

/**
 * Input gradient of the mean over H and W: grad_x[h][w][c] = grad_y[c] / (in->h * in->w).
 * @param[in]  in          x's dims
 * @param[in]  grad_y      in->c floats
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      (in)
 */
void tt_global_avg_pool_grad_input_f32(const tt_dims *in, const float *grad_y,
                                       int32_t accumulate, float *grad_x);

/**
 * Input gradient of pad: grad_y without the padding (a crop).
 * @param[in]  in, out     x's and y's dims
 * @param[in]  pad_top, pad_left  padding before the first row / column
 * @param[in]  grad_y      (out)
 * @param[in]  accumulate  0: overwrite grad_x, 1: add into it
 * @param[out] grad_x      (in)
 */
void tt_pad_grad_input_f32(const tt_dims *in, const tt_dims *out, int32_t pad_top,
                           int32_t pad_left, const float *grad_y, int32_t accumulate,
                           float *grad_x);

/**
 * Input gradient of softmax from its saved output y: grad_x = y * (grad_y - sum(grad_y * y))
 * per row. (For an int8 softmax dequantize y first: tt_dequantize_s8_f32.)
 * @param[in]  rows, depth  softmax over the last axis of (rows, depth)
 * @param[in]  y            (rows, depth) saved output
 * @param[in]  grad_y       (rows, depth)
 * @param[in]  accumulate   0: overwrite grad_x, 1: add into it
 * @param[out] grad_x       (rows, depth)
 */
void tt_softmax_grad_input_f32(int32_t rows, int32_t depth, const float *y, const float *grad_y,
                               int32_t accumulate, float *grad_x);

/**
 * Hard swish: grad_x = grad_y * d/dx hard_swish(x) (0 below -3, 1 above 3, (2x + 3) / 6
 * between), from the saved input x; the int8 form reads the real input xq (x).
 * @param[in]  n            elements
 * @param[in]  x, xq        saved input (int8: its quantization)
 * @param[in]  grad_y       n floats
 * @param[in]  accumulate   0: overwrite grad_x, 1: add into it
 * @param[out] grad_x       n floats
 */
void tt_hard_swish_grad_input_f32(int32_t n, const float *x, const float *grad_y, int32_t accumulate,
                                  float *grad_x);
void tt_hard_swish_grad_input_s8(int32_t n, const int8_t *x, const tt_act_quant *xq, const float *grad_y,
                                 int32_t accumulate, float *grad_x);

/* dst[i] += src[i], n floats: the gradient of an add passes unchanged to both inputs. */
void tt_add_grad_f32(float *dst, const float *src, int32_t n);

/* ---- elementwise ops (tinytrain/ops/: add, sub, mul, maximum, minimum, logistic, tanh,
 * leaky_relu, prelu, concatenation) --------------------------------------------------------
 * Arguments as elsewhere in this header: the size first (n, or for a binary op the tt_bcast
 * of the operand x whose gradient it writes: x's strides as a, the other operand's as b),
 * then the saved tensors (int8 ones followed by their tt_act_quant), grad_y, accumulate,
 * grad_x. An operand that was broadcast receives the sum over the output positions that
 * read it. */
/* sign * grad_y, summed onto each element of x (add: sign 1; sub's second operand: -1). */
void tt_add_grad_bcast_f32(const float *grad_y, const tt_bcast *bc, float sign, int32_t accumulate,
                           float *grad_x);
/* mul: grad_x = grad_y * other (int8: other's real values otherq->scale * (q - otherq->zero_point)). */
void tt_mul_grad_input_f32(const tt_bcast *bc, const float *other, const float *grad_y, int32_t accumulate,
                           float *grad_x);
void tt_mul_grad_input_s8(const tt_bcast *bc, const int8_t *other, const tt_act_quant *otherq,
                          const float *grad_y, int32_t accumulate, float *grad_x);
/* maximum / minimum: grad_y where x wins against other; `first` (x is the op's first
 * operand) wins ties, as TensorFlow's gradient. */
void tt_maximum_grad_input_f32(const tt_bcast *bc, const float *x, const float *other, int32_t first,
                               const float *grad_y, int32_t accumulate, float *grad_x);
void tt_maximum_grad_input_s8(const tt_bcast *bc, const int8_t *x, const int8_t *other, int32_t first,
                              const float *grad_y, int32_t accumulate, float *grad_x);
void tt_minimum_grad_input_f32(const tt_bcast *bc, const float *x, const float *other, int32_t first,
                               const float *grad_y, int32_t accumulate, float *grad_x);
void tt_minimum_grad_input_s8(const tt_bcast *bc, const int8_t *x, const int8_t *other, int32_t first,
                              const float *grad_y, int32_t accumulate, float *grad_x);
/* prelu (x: the output's shape; alpha constant, broadcast as b): grad_y where x > 0, alpha *
 * grad_y elsewhere. */
void tt_prelu_grad_input_f32(const tt_bcast *bc, const float *x, const float *alpha, const float *grad_y,
                             int32_t accumulate, float *grad_x);
void tt_prelu_grad_input_s8(const tt_bcast *bc, const int8_t *x, const tt_act_quant *xq, const int8_t *alpha,
                            const tt_act_quant *alphaq, const float *grad_y, int32_t accumulate, float *grad_x);
/* leaky relu from the saved input: grad_y where x > 0, alpha * grad_y elsewhere. */
void tt_leaky_relu_grad_input_f32(int32_t n, const float *x, float alpha, const float *grad_y,
                                  int32_t accumulate, float *grad_x);
void tt_leaky_relu_grad_input_s8(int32_t n, const int8_t *x, const tt_act_quant *xq, float alpha,
                                 const float *grad_y, int32_t accumulate, float *grad_x);
/* logistic / tanh from the saved output y: grad_y * y (1 - y) / grad_y * (1 - y^2). */
void tt_logistic_grad_input_f32(int32_t n, const float *y, const float *grad_y, int32_t accumulate,
                                float *grad_x);
void tt_logistic_grad_input_s8(int32_t n, const int8_t *y, const tt_act_quant *yq, const float *grad_y,
                               int32_t accumulate, float *grad_x);
void tt_tanh_grad_input_f32(int32_t n, const float *y, const float *grad_y, int32_t accumulate, float *grad_x);
void tt_tanh_grad_input_s8(int32_t n, const int8_t *y, const tt_act_quant *yq, const float *grad_y,
                           int32_t accumulate, float *grad_x);
/* concatenation: an input's slice of grad_y (the forward's outer / blocks / offset). */
void tt_concatenation_grad_input_f32(const float *grad_y, int32_t outer, int32_t in_block, int32_t out_block,
                                     int32_t offset, int32_t accumulate, float *grad_x);


/* ==== losses (return the loss; write d loss / d input) ==================================== */

/**
 * Softmax cross-entropy: -log softmax(logits)[label], numerically stable;
 * grad = softmax - onehot(label). An out-of-range label gives a zero gradient and NaN.
 * @param[in]  logits  n values (_s8: int8, real = q->scale * (logit - q->zero_point))
 * @param[in]  q       (_s8) quantization of the logits
 * @param[in]  label   the target class, 0..n-1
 * @param[out] grad    n floats, w.r.t. the real logits
 */
float tt_softmax_cross_entropy_f32(const float *logits, int32_t n, int32_t label, float *grad);
float tt_softmax_cross_entropy_s8(const int8_t *logits, const tt_act_quant *q, int32_t n,
                                  int32_t label, float *grad);

/* mean((y - target)^2) over n values; grad = 2 (y - target) / n. */
float tt_mse_f32(const float *y, const float *target, int32_t n, float *grad);

/* ==== update state from the parameters (tt_model_reset_optimizer) ======================= */

/**
 * Shadows of TT_UPDATE_SHADOW from the parameters as they are now.
 * @param[in]  ch      (_s8) trained channels of the weight (ch->in_channels: row length)
 * @param[in]  rows    (_s8) weight rows: out_c * kh * kw (conv2d), kh * kw (depthwise),
 *                     out_features (fully connected)
 * @param[in]  w       (_s8) (rows, ch->in_channels) int8 weights
 * @param[in]  n, b    (_s32) n int32 biases
 * @param[out] shadow  (rows, ch->k) (_s8) or n (_s32) floats: (float) of each element
 */
void tt_qas_shadow_init_s8(const tt_channels *ch, int32_t rows, const int8_t *w, float *shadow);
void tt_qas_shadow_init_s32(int32_t n, const int32_t *b, float *shadow);

/* ---- resampling and windows: input gradients (plain arguments, no weight updates) ------- */
/* Transposed convolution: grad_x[iy][ix][i] = sum over the taps (ky, kx) that took input
 * pixel (iy, ix) to output (iy*stride - pad + ky, ix*stride - pad + kx) inside `out`, and
 * over output channels o, of grad_y * w[o][ky][kx][i] (w OHWI; its own weights are frozen).
 * _s8: int8 weights with their tt_weight_quant (a scale per output channel, or one). */
void tt_transpose_conv_grad_input_f32(const float *grad_y, const tt_dims *out,
                                      const float *w, int32_t kh, int32_t kw, const tt_geom *g,
                                      int32_t accumulate, float *grad_x, const tt_dims *in);
void tt_transpose_conv_grad_input_s8(const float *grad_y, const tt_dims *out,
                                     const int8_t *w, const tt_weight_quant *wq,
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

/* ==== float16 (precision fp16 / mixed) ===============================================
 * Half storage; the portable kernels compute in float32 and round each stored result to
 * half once (gradients: sum, or old + sum when accumulating). Input gradients are in
 * gather form: each input element sums its contributions in the documented order. The
 * fused updates keep the weight gradient in float32 scratch (as the float32 kernels) and
 * apply tt_sgd_rule_f16 (tt_update_f16.h): loss scale, fp32 master copy (mixed). */
void tt_mask_relu_f16(const tt_f16 *y, int32_t n, uint8_t *mask);
void tt_mask_relu6_f16(const tt_f16 *y, int32_t n, uint8_t *mask);
void tt_mask_apply_f16(tt_f16 *grad, int32_t n, const uint8_t *mask);
/* Their Helium variants (train_f16_mve.c: the same bits). */
void tt_mask_relu_f16_mve(const tt_f16 *y, int32_t n, uint8_t *mask);
void tt_mask_relu6_f16_mve(const tt_f16 *y, int32_t n, uint8_t *mask);
void tt_mask_apply_f16_mve(tt_f16 *grad, int32_t n, const uint8_t *mask);
void tt_save_channels_f16(const tt_channels *ch, int32_t pixels, const tt_f16 *x, tt_f16 *dst);
void tt_bias_update_f16(const tt_dims *out, tt_f16 *b, const tt_f16 *grad_y, const tt_update *u);
/* Its Helium variant (bias_update_f16_mve.c: the same bits). */
void tt_bias_update_f16_mve(const tt_dims *out, tt_f16 *b, const tt_f16 *grad_y, const tt_update *u);
/* The fp32 master copy of a half weight's trained elements (compact layout; ch NULL: a
 * bias of `rows` elements). */
void tt_master_init_f16(const tt_channels *ch, int32_t rows, const tt_f16 *w, float *master);
void tt_loss_scale_after_step(tt_loss_scale *ls);
/* d input (half) = half(d output (float32) * loss scale): where the gradient enters half. */
void tt_cast_grad_f32_to_f16(const float *grad_y, int32_t n, const tt_loss_scale *ls, tt_f16 *grad_x);
void tt_conv2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *grad_y, const tt_f16 *w,
                              int32_t accumulate, tt_f16 *grad_x);
void tt_conv2d_update_weight_f16(const tt_conv_shape *s, const tt_channels *ch, tt_f16 *w,
                                 const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u,
                                 float *scratch);
void tt_depthwise_conv2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *grad_y,
                                        const tt_f16 *w, int32_t accumulate, tt_f16 *grad_x);
void tt_depthwise_conv2d_update_weight_f16(const tt_conv_shape *s, const tt_channels *ch,
                                           tt_f16 *w, const tt_f16 *x, const tt_f16 *grad_y,
                                           const tt_update *u, float *scratch);
void tt_fully_connected_grad_input_f16(int32_t in_features, int32_t out_features,
                                       const tt_f16 *grad_y, const tt_f16 *w,
                                       int32_t accumulate, tt_f16 *grad_x);
void tt_fully_connected_update_weight_f16(int32_t out_features, const tt_channels *ch, tt_f16 *w,
                                          const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u);
/* Helium variants (Cortex-M55; the same arguments; conv2d_f16_mve.c documents the order).
 * The conv2d update keeps the channel's gradient as halves in the scratch. */
void tt_conv2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y, const tt_f16 *w,
                                  int32_t accumulate, tt_f16 *grad_x);
void tt_conv2d_update_weight_f16_mve(const tt_conv_shape *s, const tt_channels *ch, tt_f16 *w,
                                     const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u,
                                     float *scratch);
void tt_depthwise_conv2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y,
                                            const tt_f16 *w, int32_t accumulate, tt_f16 *grad_x);
void tt_fully_connected_grad_input_f16_mve(int32_t in_features, int32_t out_features,
                                           const tt_f16 *grad_y, const tt_f16 *w,
                                           int32_t accumulate, tt_f16 *grad_x);
void tt_depthwise_conv2d_update_weight_f16_mve(const tt_conv_shape *s, const tt_channels *ch,
                                               tt_f16 *w, const tt_f16 *x, const tt_f16 *grad_y,
                                               const tt_update *u, float *scratch);
void tt_fully_connected_update_weight_f16_mve(int32_t out_features, const tt_channels *ch, tt_f16 *w,
                                              const tt_f16 *x, const tt_f16 *grad_y, const tt_update *u);
void tt_conv2d_grad_input_f32_mve(const tt_conv_shape *s, const float *grad_y, const float *w,
                                  int32_t accumulate, float *grad_x);
void tt_conv2d_update_weight_f32_mve(const tt_conv_shape *s, const tt_channels *ch, float *w,
                                     const float *x, const float *grad_y, const tt_update *u,
                                     float *scratch);
/* Max pooling backward, windows that do not overlap (stride >= kernel). */
void tt_max_pool2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *x, const tt_f16 *grad_y,
                                  int32_t accumulate, tt_f16 *grad_x);
void tt_max_pool2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *x, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x);
/* The pooling, mean, softmax and add / sub gradients in half (each element rounded once: the
 * gather forms their files document; the arguments of their float32 twins). */
void tt_avg_pool2d_grad_input_f16(const tt_conv_shape *s, const tt_f16 *grad_y,
                                  int32_t accumulate, tt_f16 *grad_x);
void tt_global_avg_pool_grad_input_f16(const tt_dims *in, const tt_f16 *grad_y,
                                       int32_t accumulate, tt_f16 *grad_x);
/* Their Helium variants (pool2d/avg_pool2d_backward_f16_mve.c,
 * mean/global_avg_pool_backward_f16_mve.c: the same bits). */
void tt_avg_pool2d_grad_input_f16_mve(const tt_conv_shape *s, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x);
void tt_global_avg_pool_grad_input_f16_mve(const tt_dims *in, const tt_f16 *grad_y,
                                           int32_t accumulate, tt_f16 *grad_x);
void tt_softmax_grad_input_f16(int32_t rows, int32_t depth, const tt_f16 *y, const tt_f16 *grad_y,
                               int32_t accumulate, tt_f16 *grad_x);
void tt_add_grad_f16(tt_f16 *dst, const tt_f16 *src, int32_t n);
void tt_pad_grad_input_f16(const tt_dims *in, const tt_dims *out, int32_t pad_top,
                           int32_t pad_left, const tt_f16 *grad_y, int32_t accumulate,
                           tt_f16 *grad_x);
/* The shape ops' input gradients in half (the arguments of their float32 twins, in gather
 * form: each element of grad_x stores its float32 sum, or old + sum, rounded once). */
void tt_concatenation_grad_input_f16(const tt_f16 *grad_y, int32_t outer, int32_t in_block, int32_t out_block,
                                     int32_t offset, int32_t accumulate, tt_f16 *grad_x);
void tt_strided_slice_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out, const tt_slice_params *p,
                                     int32_t accumulate, tt_f16 *grad_x, const tt_dims *in);
/* The resizes take, per axis, the range of outputs made from each input index (row_range:
 * in->h starts, then in->h ends; tinytrain.ops.resize.source_ranges). */
void tt_resize_nearest_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out,
                                      const int32_t *rows, const int32_t *cols,
                                      const int32_t *row_range, const int32_t *col_range,
                                      int32_t accumulate, tt_f16 *grad_x, const tt_dims *in);
void tt_resize_bilinear_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out,
                                       const int32_t *row_index, const float *row_weight,
                                       const int32_t *col_index, const float *col_weight,
                                       const int32_t *row_range, const int32_t *col_range,
                                       int32_t accumulate, tt_f16 *grad_x, const tt_dims *in);
void tt_transpose_conv_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out,
                                      const tt_f16 *w, int32_t kh, int32_t kw, const tt_geom *g,
                                      int32_t accumulate, tt_f16 *grad_x, const tt_dims *in);
void tt_transpose_conv_grad_input_f16_mve(const tt_f16 *grad_y, const tt_dims *out,
                                          const tt_f16 *w, int32_t kh, int32_t kw, const tt_geom *g,
                                          int32_t accumulate, tt_f16 *grad_x, const tt_dims *in);
void tt_add_grad_bcast_f16(const tt_f16 *grad_y, const tt_bcast *bc, float sign, int32_t accumulate,
                           tt_f16 *grad_x);
/* Helium (add_f16_mve.c): the same bits as tt_add_grad_f16. */
void tt_add_grad_f16_mve(tt_f16 *dst, const tt_f16 *src, int32_t n);
/* Gradients of the half activations from their saved half input (leaky relu, prelu, hard
 * swish) or output (logistic, tanh); the files give each one's rounding. */
void tt_leaky_relu_grad_input_f16(int32_t n, const tt_f16 *x, tt_f16 alpha, const tt_f16 *grad_y,
                                  int32_t accumulate, tt_f16 *grad_x);
void tt_prelu_grad_input_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *alpha, const tt_f16 *grad_y,
                             int32_t accumulate, tt_f16 *grad_x);
void tt_hard_swish_grad_input_f16(int32_t n, const tt_f16 *x, const tt_f16 *grad_y, int32_t accumulate,
                                  tt_f16 *grad_x);
void tt_logistic_grad_input_f16(int32_t n, const tt_f16 *y, const tt_f16 *grad_y, int32_t accumulate,
                                tt_f16 *grad_x);
void tt_tanh_grad_input_f16(int32_t n, const tt_f16 *y, const tt_f16 *grad_y, int32_t accumulate,
                            tt_f16 *grad_x);
/* Helium: leaky relu and prelu the same bits, hard swish in half (its own model). */
void tt_leaky_relu_grad_input_f16_mve(int32_t n, const tt_f16 *x, tt_f16 alpha, const tt_f16 *grad_y,
                                      int32_t accumulate, tt_f16 *grad_x);
void tt_prelu_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *alpha, const tt_f16 *grad_y,
                                 int32_t accumulate, tt_f16 *grad_x);
void tt_hard_swish_grad_input_f16_mve(int32_t n, const tt_f16 *x, const tt_f16 *grad_y, int32_t accumulate,
                                      tt_f16 *grad_x);

/* mul, maximum / minimum in half. bc: x's strides as a, the other operand's as b.
 * _grad_input_: x has the output's shape (elementwise: each gradient one half, added to an old
 * one in one rounding; Helium variants with the same bits); _grad_bcast_: x broadcasts (per
 * element of x the float sum over the positions that read it, rounded once:
 * tt_bcast_grad_f16.h). maximum / minimum: grad_y where x wins (`first`: x is the op's first
 * operand and wins ties), as tt_maximum_grad_input_f32. */
void tt_mul_grad_input_f16(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y, int32_t accumulate,
                           tt_f16 *grad_x);
void tt_mul_grad_bcast_f16(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y, int32_t accumulate,
                           tt_f16 *grad_x);
void tt_mul_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y,
                               int32_t accumulate, tt_f16 *grad_x);
/* mul_f16_mve.c: the portable sums in float32 lanes over x's channels (the same bits; operands
 * that broadcast along the channels, inf and NaN: the portable kernel). */
void tt_mul_grad_bcast_f16_mve(const tt_bcast *bc, const tt_f16 *other, const tt_f16 *grad_y,
                               int32_t accumulate, tt_f16 *grad_x);
void tt_maximum_grad_input_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x);
void tt_maximum_grad_bcast_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x);
void tt_minimum_grad_input_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x);
void tt_minimum_grad_bcast_f16(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                               const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x);
void tt_maximum_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                                   const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x);
void tt_minimum_grad_input_f16_mve(const tt_bcast *bc, const tt_f16 *x, const tt_f16 *other, int32_t first,
                                   const tt_f16 *grad_y, int32_t accumulate, tt_f16 *grad_x);

#endif
