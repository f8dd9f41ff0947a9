/* Half-precision leaky relu (portable): x <= 0 ? half(x * alpha) : x, alpha a half (a float16
 * graph rounds it to half as it rounds every constant). The product of two halves is exact in
 * float (22 bits of 24), so its one rounding to half is the correctly rounded half product:
 * the Helium variant's vmulq_f16 (leaky_relu_f16_mve.c) stores the same bits, and
 * tinytrain/ops/leaky_relu.py leaky_relu_f16 models both. A NaN is stored as it came (no
 * arithmetic on it: Helium's would return the default NaN). */
#include "tt_kernels.h"
#include "tt_f16.h"

void tt_leaky_relu_f16(const tt_f16 *x, int32_t n, tt_f16 alpha, tt_f16 *y)
{
    const float a = tt_h2f(alpha);
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float v = tt_h2f(x[i]);
        y[i] = v <= 0.0f ? tt_f2h(v * a) : x[i];
    }
}
