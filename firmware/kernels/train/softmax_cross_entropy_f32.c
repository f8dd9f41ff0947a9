/* Softmax cross-entropy on float logits: loss = logsumexp(l) - l[label], computed with
 * the max subtracted; grad = softmax(l) - onehot(label). An out-of-range label
 * yields a zero gradient (no update) and a NaN loss. exp/log: tt_math.h (the same bits
 * on every target; tinytrain.ieee_math repeats them). */
#include <math.h>
#include "tt_math.h"
#include "tt_train_kernels.h"

float tt_softmax_cross_entropy_f32(const float *logits, int32_t n, int32_t label, float *grad)
{
    float m = logits[0], sum = 0.0f;
    int32_t i;
    if (label < 0 || label >= n) {
        for (i = 0; i < n; ++i) grad[i] = 0.0f;
        return NAN;
    }
    for (i = 1; i < n; ++i) if (logits[i] > m) m = logits[i];
    for (i = 0; i < n; ++i) {
        grad[i] = tt_expf(logits[i] - m);   /* the exponentials, normalized below */
        sum += grad[i];
    }
    for (i = 0; i < n; ++i) grad[i] = grad[i] / sum;
    grad[label] -= 1.0f;
    return tt_logf(sum) - (logits[label] - m);
}
