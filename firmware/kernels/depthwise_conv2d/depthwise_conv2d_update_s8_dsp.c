/* depthwise conv2d weight gradient and fused QAS update of int8 graphs, scalar floats
 * (Cortex-M4/M7, the Cortex-M55 and the host): tt_depthwise_conv2d_grad_weight_s8's floats
 * and tt_depthwise_conv2d_update_weight_s8's bytes, bit for bit (declared in
 * tt_kernels_simd.h).
 *
 * Per trained channel the reference walks every output pixel, rescales d per pixel and
 * loads / stores the tap's gradient element per product; here (tt_update_rows.h) the
 * nonzero d of 64 pixels are listed once, each tap's element stays in a register over the
 * list (it still takes its products in pixel order: the same sums), and the update runs
 * with its mode decided once per channel, in int32 where the step allows. A depthwise
 * layer's weight gradient is a small share of a training step (kh * kw MACs per output),
 * so the Cortex-M55 runs this one too. */
#include "tt_train_kernels.h"
#include "tt_float_util.h"
#include "tt_kernels_simd.h"
#include "tt_update_rows.h"

/* Trained channel j's gradient (kh, kw) added into gw at stride `stride`: x channel j (of
 * ch->x_channels), grad_y channel yc. */
static void wgrad_channel(const tt_conv_shape *s, const tt_channels *ch, const int8_t *x,
                          const tt_act_quant *xq, const float *grad_y, int32_t j, int32_t yc,
                          float *gw, int32_t stride)
{
    const int32_t npix = s->out->h * s->out->w, in_h = s->in->h, in_w = s->in->w, xc = ch->x_channels;
    const int32_t zp = xq->zero_point;
    const int8_t *xj = x + j;
    tt_wg_list l;
    int32_t p0, ky, kx, e;
    for (p0 = 0; p0 < npix; p0 += TT_WG_CHUNK) {
        (void)tt_wg_list_build(&l, s, grad_y, yc, xq->scale, p0, npix - p0 < TT_WG_CHUNK ? npix : p0 + TT_WG_CHUNK);
        if (l.n == 0) continue;
        for (ky = 0; ky < s->kh; ++ky) {
            const int32_t dy = ky * s->g->dil_h;
            for (kx = 0; kx < s->kw; ++kx) {
                const int32_t dx = kx * s->g->dil_w;
                float *gp = gw + (ky * s->kw + kx) * stride;
                float a = *gp;
                for (e = 0; e < l.n; ++e) {
                    const int32_t ih = l.ih[e] + dy, iw = l.iw[e] + dx;
                    if ((uint32_t)ih >= (uint32_t)in_h || (uint32_t)iw >= (uint32_t)in_w) continue;
                    a += l.d[e] * (float)((int32_t)xj[(ih * in_w + iw) * xc] - zp);
                }
                *gp = a;
            }
        }
    }
}

void tt_depthwise_conv2d_grad_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch,
                                            const int8_t *x, const tt_act_quant *xq,
                                            const float *grad_y, int32_t accumulate, float *grad_w)
{
    int32_t j;
    tt_zero_unless_f32(grad_w, s->kh * s->kw * ch->k, accumulate);
    for (j = 0; j < ch->k; ++j)
        wgrad_channel(s, ch, x, xq, grad_y, j, ch->index ? ch->index[j] : j, grad_w + j, ch->k);
}

void tt_depthwise_conv2d_update_weight_s8_dsp(const tt_conv_shape *s, const tt_channels *ch,
                                              int8_t *w, const tt_weight_quant *wq, const int8_t *x,
                                              const tt_act_quant *xq, const float *grad_y,
                                              const tt_update *u, float *scratch)
{
    const tt_hparams hp = *u->hp;
    const int32_t spatial = s->kh * s->kw, k = ch->k;
    int32_t j;
    for (j = 0; j < k; ++j) {
        const int32_t c = ch->index ? ch->index[j] : j;
        tt_zero_unless_f32(scratch, spatial, 0);
        wgrad_channel(s, ch, x, xq, grad_y, j, c, scratch, 1);
        tt_qas_update_run_s8(w + c, NULL, ch->in_channels, scratch, spatial, wq->scale[wq->per_channel ? c : 0],
                             &hp, u, j, k);
    }
    tt_update_advance(u, spatial * k);
}
