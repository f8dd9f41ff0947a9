/* Half-precision hard swish (portable): in float, r = x + 3, c = min(max(r, 0), 6), then
 * half((x * c) / 6) (tt_hard_swish_f32's order), except that below -3 the output is -0
 * without the multiply: x * 0 is -0 for every finite x there, and -inf * 0 would be a NaN
 * whose sign is the host's (x86 negative, Arm positive). A NaN is stored as it came.
 * tinytrain/ops/hard_swish.py hard_swish_f16 is its twin; the Helium variant computes in
 * half (hard_swish_f16_mve.c, its own model). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_hard_swish_f16(const tt_f16 *x, int32_t n, tt_f16 *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = tt_h2f(x[i]);
        const float r = v + 3.0f;
        if (v != v) {
            y[i] = x[i];
        } else if (r < 0.0f) {
            y[i] = 0x8000u;
        } else {
            const float c = r > 6.0f ? 6.0f : r;
            y[i] = tt_f2h((v * c) / 6.0f);
        }
    }
}
