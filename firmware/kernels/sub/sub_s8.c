/* int8 elementwise sub, LiteRT's reference SubElementwise (equal shapes) and
 * BroadcastQuantSubSlow (broadcast): ADD's rescaling (tt_add_params) with a difference. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

static int8_t sub_one(int32_t a, int32_t b, const tt_add_params *p)
{
    const int32_t a_shifted = (a - p->a_zp) * (1 << p->left_shift);
    const int32_t b_shifted = (b - p->b_zp) * (1 << p->left_shift);
    const int32_t a_scaled = tt_mul_by_quantized_multiplier(a_shifted, p->a_mult, p->a_shift);
    const int32_t b_scaled = tt_mul_by_quantized_multiplier(b_shifted, p->b_mult, p->b_shift);
    const int32_t out = tt_mul_by_quantized_multiplier(a_scaled - b_scaled, p->out_mult, p->out_shift) + p->out_zp;
    return (int8_t)tt_clamp_i32(out, p->act_min, p->act_max);
}

void tt_sub_s8(const int8_t *a, const int8_t *b, int32_t n, const tt_add_params *p, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; i++) y[i] = sub_one(a[i], b[i], p);
}

void tt_sub_bcast_s8(const int8_t *a, const int8_t *b, const tt_bcast *bc, const tt_add_params *p, int8_t *y)
{
    int32_t i, j, k;
    for (i = 0; i < bc->h; ++i) {
        for (j = 0; j < bc->w; ++j) {
            const int8_t *pa = a + i * bc->a_sh + j * bc->a_sw;
            const int8_t *pb = b + i * bc->b_sh + j * bc->b_sw;
            for (k = 0; k < bc->c; ++k) *y++ = sub_one(pa[k * bc->a_sc], pb[k * bc->b_sc], p);
        }
    }
}
