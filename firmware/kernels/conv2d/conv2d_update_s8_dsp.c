/* conv2d weight gradient and fused QAS update of int8 graphs for cores without vector
 * floats (Cortex-M4/M7, the host): tt_conv2d_grad_weight_s8's floats and
 * tt_conv2d_update_weight_s8's bytes, bit for bit (declared in tt_kernels_simd.h).
 *
 * The reference adds, for each output channel o, d * (x - zp) into every element of o's
 * gradient over the output pixels in ascending order, loading and storing the element for
 * every product, rescaling d per pixel for each tap and reading the update mode per element.
 * Here (tt_update_rows.h): the nonzero d of a chunk of 64 pixels are listed once per
 * channel, eight gradient elements of a tap row stay in float registers over that list
 * (each element still takes its products in pixel order, so every sum rounds as the
 * reference's), and the update runs with its mode decided once per run, in int32 where the
 * step allows (the same floats, the same draws, the same bytes). */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"
#include "tt_update_rows.h"

void tt_conv2d_grad_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                                  const tt_act_quant *xq, const float *grad_y, int32_t accumulate,
                                  float *grad_w)
{
    const int32_t per_out = s->kh * s->kw * ch->k;
    int32_t o;
    tt_zero_unless_f32(grad_w, s->out->c * per_out, accumulate);
    for (o = 0; o < s->out->c; ++o)
        tt_conv2d_wgrad_channel_scalar(s, ch, x, xq, grad_y, o, grad_w + o * per_out);
}

void tt_conv2d_update_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch, int8_t *w,
                                    const tt_weight_quant *wq, const int8_t *x,
                                    const tt_act_quant *xq, const float *grad_y, const tt_update *u,
                                    float *scratch)
{
    tt_conv2d_update_by_channel(s, ch, w, wq, x, xq, grad_y, u, scratch, tt_conv2d_wgrad_channel_scalar);
}
