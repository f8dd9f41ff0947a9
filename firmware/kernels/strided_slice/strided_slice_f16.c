/* Half-precision strided slice of HWC (portable): the float32 kernel's copy on halves (exact). */
#include <string.h>
#include "tt_kernels.h"

void tt_strided_slice_f16(const tt_f16 *x, const tt_dims *in, const tt_slice_params *p,
                          tt_f16 *y, const tt_dims *out)
{
    int32_t i, j, k;
    for (i = 0; i < out->h; ++i) {
        const int32_t h = p->begin_h + i * p->stride_h;
        for (j = 0; j < out->w; ++j) {
            const int32_t w = p->begin_w + j * p->stride_w;
            const tt_f16 *xp = x + ((size_t)h * in->w + w) * in->c + p->begin_c;
            tt_f16 *yp = y + ((size_t)i * out->w + j) * out->c;
            if (p->stride_c == 1) {
                memcpy(yp, xp, (size_t)out->c * sizeof(tt_f16));
            } else {
                for (k = 0; k < out->c; ++k) yp[k] = xp[k * p->stride_c];
            }
        }
    }
}
