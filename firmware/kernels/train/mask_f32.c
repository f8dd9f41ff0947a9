/* 1-bit activation masks of float outputs (packed LSB first) and their use in the
 * backward: the derivative of relu / relu6 is 1 exactly where the bit is set. */
#include "tt_train_kernels.h"

void tt_mask_relu_f32(const float *y, int32_t n, uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < TT_MASK_BYTES(n); ++i) mask[i] = 0;
    for (i = 0; i < n; ++i) {
        if (y[i] > 0.0f) mask[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

void tt_mask_relu6_f32(const float *y, int32_t n, uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < TT_MASK_BYTES(n); ++i) mask[i] = 0;
    for (i = 0; i < n; ++i) {
        if (y[i] > 0.0f && y[i] < 6.0f) mask[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

void tt_mask_apply_f32(float *grad, int32_t n, const uint8_t *mask)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        if (!((mask[i >> 3] >> (i & 7)) & 1u)) grad[i] = 0.0f;
    }
}
