/* int8 leaky relu, LiteRT's reference QuantizeLeakyRelu: q - zp >= 0 takes the identity
 * multiplier, below it the alpha multiplier (|multiplier| and a negation for a negative alpha). */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_leaky_relu_s8(const int8_t *x, int32_t n, const tt_leaky_relu_params *p, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = (int32_t)x[i] - p->in_zp;
        int32_t out;
        if (v >= 0) {
            out = tt_mul_by_quantized_multiplier(v, p->identity_mult, p->identity_shift);
        } else {
            out = tt_mul_by_quantized_multiplier(v, p->alpha_mult, p->alpha_shift);
            if (p->alpha_negative) out = -out;
        }
        y[i] = (int8_t)tt_clamp_i32(p->out_zp + out, -128, 127);
    }
}
