/* float32 -> int8, TFLite reference AffineQuantize: round(x / scale) + zp in float,
 * rounding half away from zero, clamped to int8. */
#include <math.h>
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_quantize_f32_s8(const float *x, int32_t n, float scale, int32_t zp, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const float r = roundf(x[i] / scale);
        int32_t v;
        /* Range-check in float first: converting a huge float to int32 is undefined. */
        if (r != r) v = zp;                 /* NaN */
        else if (r >= 1024.0f) v = INT8_MAX;
        else if (r <= -1024.0f) v = INT8_MIN;
        else v = (int32_t)r + zp;
        y[i] = (int8_t)tt_clamp_i32(v, INT8_MIN, INT8_MAX);
    }
}
