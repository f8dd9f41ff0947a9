/* int8 prelu, LiteRT's reference Prelu (equal shapes) / BroadcastPrelu4DSlow (alpha broadcast):
 * q - zp >= 0 rescaled by pos_mult, below it (q - zp) * (alpha - alpha_zp) by neg_mult. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

static int8_t prelu_one(int32_t x, int32_t alpha, const tt_prelu_params *p)
{
    const int32_t v = x - p->x_zp;
    const int32_t out = v >= 0 ? tt_mul_by_quantized_multiplier(v, p->pos_mult, p->pos_shift)
                               : tt_mul_by_quantized_multiplier(v * (alpha - p->alpha_zp), p->neg_mult, p->neg_shift);
    return (int8_t)tt_clamp_i32(p->out_zp + out, -128, 127);
}

void tt_prelu_s8(const int8_t *x, const int8_t *alpha, int32_t n, const tt_prelu_params *p, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = prelu_one(x[i], alpha[i], p);
}

void tt_prelu_bcast_s8(const int8_t *x, const int8_t *alpha, const tt_bcast *bc, const tt_prelu_params *p,
                       int8_t *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int8_t *px = x + i * bc->a_sh + j * bc->a_sw;
            const int8_t *pa = alpha + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) *y++ = prelu_one(px[k * bc->a_sc], pa[k * bc->b_sc], p);
        }
    }
}
