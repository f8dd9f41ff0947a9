/* Softmax cross-entropy on int8 logits (real = scale * (q - zp)); the gradient is
 * w.r.t. the real logits. Same conventions as tt_softmax_cross_entropy_f32; mirrored bit
 * for bit by tinytrain.training.vjp.softmax_cross_entropy_s8. */
#include <math.h>
#include "tt_math.h"
#include "tt_train_kernels.h"

float tt_softmax_cross_entropy_s8(const int8_t *logits, const tt_act_quant *q, int32_t n,
                                  int32_t label, float *grad)
{
    const float scale = q->scale;
    int32_t i, qmax = logits[0];
    float sum = 0.0f, shifted_label;
    if (label < 0 || label >= n) {
        for (i = 0; i < n; ++i) grad[i] = 0.0f;
        return NAN;
    }
    /* the zero point cancels: l[i] - max l = scale * (q[i] - max q) */
    for (i = 1; i < n; ++i) if (logits[i] > qmax) qmax = logits[i];
    for (i = 0; i < n; ++i) {
        grad[i] = tt_expf(scale * (float)((int32_t)logits[i] - qmax));
        sum += grad[i];
    }
    for (i = 0; i < n; ++i) grad[i] = grad[i] / sum;
    grad[label] -= 1.0f;
    shifted_label = scale * (float)((int32_t)logits[label] - qmax);
    return tt_logf(sum) - shifted_label;
}
