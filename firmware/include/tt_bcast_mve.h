/* Helium (MVE) walks of broadcast half operands, shared by the elementwise _f16_mve kernels
 * (mul_f16_mve.c, maximum_f16_mve.c). An operand of a tt_bcast is read along the output's
 * channels either as a vector (its channel stride 1) or as one value repeated (stride 0:
 * vdupq); `tt_bcast_flat` tells when both operands can be walked over the whole output as
 * one run (each walks as the output or is a scalar), else the kernels walk the output's
 * pixels with the channels in the lanes (an operand's channel stride is 1 or 0:
 * tinytrain/ops/elementwise.py operand_strides). Helium only: an M4 build, or a
 * header-by-header include as tests/test_compile.py does, gets nothing. */
#ifndef TT_BCAST_MVE_H
#define TT_BCAST_MVE_H

#include "tt_types.h"
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>

/* The operand's strides are the output's: it walks as the output. */
static inline int32_t tt_bcast_dense(const tt_bcast *bc, int32_t sh, int32_t sw, int32_t sc)
{
    return (bc->c == 1 || sc == 1) && (bc->w == 1 || sw == bc->c) && (bc->h == 1 || sh == bc->w * bc->c);
}

static inline int32_t tt_bcast_scalar(int32_t sh, int32_t sw, int32_t sc)
{
    return !sh && !sw && !sc;
}

/* 1: a and b both walk as the output or are scalars; *va / *vb: read as vectors. */
static inline int32_t tt_bcast_flat(const tt_bcast *bc, int32_t *va, int32_t *vb)
{
    const int32_t da = tt_bcast_dense(bc, bc->a_sh, bc->a_sw, bc->a_sc);
    const int32_t db = tt_bcast_dense(bc, bc->b_sh, bc->b_sw, bc->b_sc);
    *va = da;
    *vb = db;
    return (da || tt_bcast_scalar(bc->a_sh, bc->a_sw, bc->a_sc)) && (db || tt_bcast_scalar(bc->b_sh, bc->b_sw, bc->b_sc));
}

/* 8 halves from p + i (predicated) or p[0] in every lane. */
static inline float16x8_t tt_bcast_load_f16(const float16_t *p, int32_t vec, int32_t i, mve_pred16_t pr)
{
    return vec ? vldrhq_z_f16(p + i, pr) : vdupq_n_f16(p[0]);
}

#endif
#endif
