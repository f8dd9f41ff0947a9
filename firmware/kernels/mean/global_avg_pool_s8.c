/* int8 mean over H and W, as LiteRT's reference int8 MEAN computes it: the sum of
 * (x - in_zp) over H*W is rescaled once by q->multiplier[0]/shift[0], which carry
 * in_scale / out_scale with the 1/(H*W) folded in the way LiteRT folds it (integer
 * division of the multiplier, see tinytrain.quant.mean_multiplier; no division here),
 * then out_zp is added and the result clamped to [act_min, act_max]. */
#include "tt_kernels.h"
#include "tt_fixedpoint.h"

void tt_global_avg_pool_s8(const int8_t *x, const tt_dims *in, const tt_requant *q, int8_t *y)
{
    const int32_t n = in->h * in->w;
    int32_t c, i;
    for (c = 0; c < in->c; c++) {
        int32_t acc = 0;
        for (i = 0; i < n; i++) acc += (int32_t)x[(size_t)i * in->c + c] - q->in_zp;
        y[c] = tt_requantize_s8(acc, q, 0);      /* one multiplier for every channel */
    }
}
