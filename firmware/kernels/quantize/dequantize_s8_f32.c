/* int8 -> float32, TFLite reference Dequantize: scale * (x - zp). The product of a
 * float32 scale and a 9-bit integer is exact in double, so the float product rounds
 * exactly like TFLite's double product cast to float. */
#include "tt_kernels.h"

void tt_dequantize_s8_f32(const int8_t *x, int32_t n, float scale, int32_t zp, float *y)
{
    int32_t i;
    for (i = 0; i < n; i++)
        y[i] = scale * (float)((int32_t)x[i] - zp);
}
