/* The predicted class: the index of the largest output, ties broken fairly.
 *
 * An int8 output rounds logits closer than one quantization step to one value: on keyword
 * spotting 5.6% of samples have two or more classes tied for the top. Taking the lowest
 * index among them favours the classes a model had before transfer learning (new classes
 * are appended after them): it moved 1 point of held-out accuracy from the new keywords to
 * the old ones. Instead, the tied classes are told apart by a hash of the output's bytes
 * (FNV-1a): as good as a uniform random choice over them, yet the same output always gives
 * the same class. The largest value is found as before (`>`: a NaN never wins unless it is
 * first; NaN ties nothing). tinytrain/predict.py computes the same classes in numpy
 * (tests/test_predict.py checks they agree). */
#ifndef TT_ARGMAX_H
#define TT_ARGMAX_H

#include <stdint.h>

static inline uint32_t tt_fnv1a(const uint8_t *p, uint32_t n)
{
    uint32_t h = 2166136261u, i;
    for (i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

#define TT_ARGMAX_DEFINE(name, type)                                               \
    static inline uint32_t name(const type *y, uint32_t n)                        \
    {                                                                              \
        uint32_t i, best = 0, tied = 0, pick;                                      \
        for (i = 1; i < n; ++i)                                                    \
            if (y[i] > y[best])                                                    \
                best = i;                                                          \
        for (i = best; i < n; ++i)                                                 \
            tied += y[i] == y[best];                                               \
        if (tied < 2)                                                              \
            return best;                                                           \
        pick = tt_fnv1a((const uint8_t *)y, n * (uint32_t)sizeof(type)) % tied;   \
        for (i = best; i < n; ++i)                                                 \
            if (y[i] == y[best] && pick-- == 0)                                    \
                return i;                                                          \
        return best;                                                               \
    }

TT_ARGMAX_DEFINE(tt_argmax_s8, int8_t)
TT_ARGMAX_DEFINE(tt_argmax_f32, float)

#endif
