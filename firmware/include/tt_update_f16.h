/* The update rule of half-precision parameters (precision fp16 / mixed), shared by every
 * _f16 update kernel; tinytrain/ops/f16.py `sgd` and the training simulation are its numpy
 * twin, bit for bit. Header only. */
#ifndef TT_UPDATE_F16_H
#define TT_UPDATE_F16_H

#include <stdint.h>
#include "tt_f16.h"
#include "tt_train_kernels.h"

static inline int tt_finite_f32(float v)
{
    return (v - v) == 0.0f;      /* false for inf and NaN, without math.h */
}

/* SGD on element e of a half parameter w from its float32 gradient (scaled by the loss
 * scale): g = grad / scale + wd * w; momentum (float32 state); w - lr * g, computed from the
 * fp32 master copy u->shadow[e] in mixed precision (TT_UPDATE_MASTER), else from w widened.
 * Returns the new half value. With dynamic loss scaling, a non-finite gradient sets
 * ls->overflow, and from then on every element of the step keeps its value. */
static inline tt_f16 tt_sgd_rule_f16(tt_f16 w, float grad, const tt_hparams *hp, const tt_update *u,
                                     int32_t e)
{
    tt_loss_scale *ls = u->ls;
    float wf = u->shadow ? u->shadow[e] : tt_h2f(w);
    float g;
    if (ls->dynamic) {
        if (ls->overflow) return w;
        if (!tt_finite_f32(grad)) {
            ls->overflow = 1;
            return w;
        }
    }
    g = grad / ls->scale;
    g = g + hp->weight_decay * wf;
    if (u->momentum) {
        float *m = &u->momentum[e];
        *m = hp->momentum * *m + g;
        g = *m;
    }
    wf = wf - hp->lr * g;
    if (u->shadow) u->shadow[e] = wf;
    return tt_f2h(wf);
}

#endif
