/* SGD (momentum, weight decay) on float parameters, contiguous or in strided rows
 * (the trained input channels of a weight). Rule: tt_update_rules.h. */
#include "tt_train_kernels.h"
#include "tt_update_rules.h"

void tt_sgd_update_f32(float *w, const float *grad, int32_t n, float lr, float momentum,
                       float weight_decay, float *m_buf)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        w[i] = tt_sgd_rule(w[i], grad[i], lr, momentum, weight_decay, m_buf ? m_buf + i : NULL);
    }
}

void tt_sgd_update_rows_f32(float *w, int32_t w_stride, const float *grad, int32_t rows,
                            int32_t row_len, float lr, float momentum, float weight_decay,
                            float *m_buf)
{
    int32_t r;
    for (r = 0; r < rows; ++r) {
        tt_sgd_update_f32(w + r * w_stride, grad + r * row_len, row_len, lr, momentum,
                          weight_decay, m_buf ? m_buf + r * row_len : NULL);
    }
}
