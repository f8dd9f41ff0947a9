/* Half-precision strided slice backward (portable), in gather form: each element of grad_x
 * takes the grad_y element sliced from it, or 0 where the slice skipped it; stored as is, or
 * as half(old + g) when accumulating (one rounding, also where g is 0: what the training
 * simulation's rounding of old + 0 gives, -0 becoming +0). */
#include "tt_train_kernels.h"
#include "tt_f16.h"

/* The index along one axis of the output element read from input index i, or -1. */
static int32_t sliced_from(int32_t i, int32_t begin, int32_t stride, int32_t count)
{
    const int32_t d = i - begin;
    int32_t k;
    if (d % stride) return -1;
    k = d / stride;
    return k >= 0 && k < count ? k : -1;
}

/* Elements [c0, c1) of a pixel that the slice skipped: 0, or half(old + 0). */
static void skipped(tt_f16 *gx, int32_t c0, int32_t c1, int32_t accumulate)
{
    int32_t c;
    for (c = c0; c < c1; ++c) gx[c] = accumulate ? tt_f2h(tt_h2f(gx[c]) + 0.0f) : 0;
}

void tt_strided_slice_grad_input_f16(const tt_f16 *grad_y, const tt_dims *out, const tt_slice_params *p,
                                     int32_t accumulate, tt_f16 *grad_x, const tt_dims *in)
{
    int32_t h, w, c;
    for (h = 0; h < in->h; ++h) {
        const int32_t i = sliced_from(h, p->begin_h, p->stride_h, out->h);
        for (w = 0; w < in->w; ++w) {
            const int32_t j = i < 0 ? -1 : sliced_from(w, p->begin_w, p->stride_w, out->w);
            tt_f16 *gx = grad_x + (h * in->w + w) * in->c;
            const tt_f16 *gy = j < 0 ? grad_y : grad_y + (i * out->w + j) * out->c;
            if (j < 0) {
                skipped(gx, 0, in->c, accumulate);
            } else if (p->stride_c == 1) {          /* [begin_c, begin_c + out->c) sliced */
                const int32_t b = p->begin_c, e = p->begin_c + out->c;
                skipped(gx, 0, b, accumulate);
                if (accumulate) {
                    for (c = b; c < e; ++c) gx[c] = tt_f2h(tt_h2f(gx[c]) + tt_h2f(gy[c - b]));
                } else {
                    for (c = b; c < e; ++c) gx[c] = gy[c - b];
                }
                skipped(gx, e, in->c, accumulate);
            } else {
                for (c = 0; c < in->c; ++c) {
                    const int32_t k = sliced_from(c, p->begin_c, p->stride_c, out->c);
                    if (k >= 0)
                        gx[c] = accumulate ? tt_f2h(tt_h2f(gx[c]) + tt_h2f(gy[k])) : gy[k];
                    else
                        skipped(gx, c, c + 1, accumulate);
                }
            }
        }
    }
}
