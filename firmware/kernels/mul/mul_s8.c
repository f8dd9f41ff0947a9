/* int8 elementwise mul, LiteRT's reference integer_ops::MulElementwise (equal shapes) and
 * BroadcastMul6DSlow (broadcast): (a - a_zp) * (b - b_zp) rescaled by one multiplier (a left
 * shift when it is 1 or more), plus the output zero point, clamped. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

static int8_t mul_one(int32_t a, int32_t b, const tt_mul_params *p)
{
    const int32_t prod = (a - p->a_zp) * (b - p->b_zp);
    const int32_t out = tt_mul_by_quantized_multiplier(prod, p->out_mult, p->out_shift) + p->out_zp;
    return (int8_t)tt_clamp_i32(out, p->act_min, p->act_max);
}

void tt_mul_s8(const int8_t *a, const int8_t *b, int32_t n, const tt_mul_params *p, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; i++) y[i] = mul_one(a[i], b[i], p);
}

void tt_mul_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, const tt_mul_params *p, int8_t *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int8_t *pa = a + i * bc->a_sh + j * bc->a_sw;
            const int8_t *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) *y++ = mul_one(pa[k * bc->a_sc], pb[k * bc->b_sc], p);
        }
    }
}
