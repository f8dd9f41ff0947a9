/* Small float helpers the float32 kernels share. Header only, static inline. */
#ifndef TT_FLOAT_UTIL_H
#define TT_FLOAT_UTIL_H

#include <stdint.h>

/* Fused activation: act 0 none, 1 relu, 2 relu6. */
static inline float tt_act_f32(float v, int32_t act)
{
    if (act == 0) return v;
    if (v < 0.0f) v = 0.0f;
    if (act == 2 && v > 6.0f) v = 6.0f;
    return v;
}

/* Zero n floats unless accumulating (the `accumulate` flag of the backward kernels). */
static inline void tt_zero_unless_f32(float *dst, int32_t n, int32_t accumulate)
{
    int32_t i;
    if (accumulate) return;
    for (i = 0; i < n; ++i) dst[i] = 0.0f;
}

#endif
