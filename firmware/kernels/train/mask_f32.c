/* 1-bit activation masks of float outputs (packed LSB first) and their use in the
 * backward: the derivative of relu / relu6 is 1 exactly where the bit is set. */
#include "tt_train_kernels.h"

/* Eight elements per mask byte, built in a register and stored once. */
void tt_mask_relu_f32(const float *y, int32_t n, uint8_t *mask)
{
    int32_t i, j;
    for (i = 0; i + 8 <= n; i += 8) {
        const float *v = y + i;
        mask[i >> 3] = (uint8_t)((v[0] > 0.0f) | (v[1] > 0.0f) << 1 | (v[2] > 0.0f) << 2 | (v[3] > 0.0f) << 3
                                 | (v[4] > 0.0f) << 4 | (v[5] > 0.0f) << 5 | (v[6] > 0.0f) << 6
                                 | (v[7] > 0.0f) << 7);
    }
    if (i < n) {
        uint32_t b = 0;
        for (j = 0; i + j < n; ++j) b |= (uint32_t)(y[i + j] > 0.0f) << j;
        mask[i >> 3] = (uint8_t)b;
    }
}

void tt_mask_relu6_f32(const float *y, int32_t n, uint8_t *mask)
{
    int32_t i, j;
    for (i = 0; i < n; i += 8) {
        uint32_t b = 0;
        for (j = 0; j < 8 && i + j < n; ++j) b |= (uint32_t)(y[i + j] > 0.0f && y[i + j] < 6.0f) << j;
        mask[i >> 3] = (uint8_t)b;
    }
}

/* grad[i] = 0 where bit i is clear; a byte of all ones (every element passes) is skipped. */
void tt_mask_apply_f32(float *grad, int32_t n, const uint8_t *mask)
{
    int32_t i, j;
    for (i = 0; i < n; i += 8) {
        const uint32_t b = mask[i >> 3];
        const int32_t m = n - i < 8 ? n - i : 8;
        if (b == 0xFFu && m == 8) continue;
        for (j = 0; j < m; ++j) {
            if (!((b >> j) & 1u)) grad[i + j] = 0.0f;
        }
    }
}
