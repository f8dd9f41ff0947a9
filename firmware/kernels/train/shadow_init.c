/* The fp32 shadows of TT_UPDATE_SHADOW from the parameters as they are now
 * (tt_model_reset_optimizer): the trained elements, compact, as floats. */
#include "tt_train_kernels.h"

void tt_qas_shadow_init_s8(const tt_channels *ch, int32_t rows, const int8_t *w, float *shadow)
{
    int32_t r, j;
    for (r = 0; r < rows; ++r) {
        for (j = 0; j < ch->k; ++j) {
            shadow[r * ch->k + j] = (float)w[r * ch->in_channels + (ch->index ? ch->index[j] : j)];
        }
    }
}

void tt_qas_shadow_init_s32(int32_t n, const int32_t *b, float *shadow)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        shadow[i] = (float)b[i];
    }
}
