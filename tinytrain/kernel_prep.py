"""Data the optimised int8 kernels take beside the reference kernels' arguments, computed
offline (pure numpy). One function per kind of prepared data; each says which kernels take
it and mirrors a C type or size function of firmware/include/tt_kernels_simd.h.

Only what never changes on the device is prepared here: a layer's quantization scales stay
fixed (QAS training rescales gradients, not the multipliers), whereas weights and biases
are updated by on-device training, so nothing is folded into them (the kernels subtract the
input zero point themselves: SXTAB16 does it for free on the DSP extension, the MVE kernels
fold it at run time per call).
"""
from __future__ import annotations

import numpy as np

# tt_rq_dsp: {mult, hi, shift} per output channel
RQ_DSP_FIELDS = ("mult", "hi", "shift")
RQ_DSP_MIN_RIGHT_SHIFT = 2      # r = -shift in [2, 22] takes the one-SMLAL path
RQ_DSP_MAX_RIGHT_SHIFT = 22


def requant_dsp(q: dict) -> np.ndarray:
    """The `rq` table of the _dsp kernels (C type tt_rq_dsp): int32 array (channels, 3).

    q is a tinytrain.quant requantization dict (in_zp, out_zp, act_min, act_max, multiplier,
    shift; one multiplier per output channel, or one for the whole tensor). For a channel
    whose right shift r = -shift is in [2, 22], the reference's double rounding plus the
    output zero point equal (acc * m + C) >> (31 + r) with the 64-bit constant
    C = 2^(30+r) + 2^30 + out_zp * 2^(31+r) - [acc < 0] * 2^31 (tt_kernels_simd.h derives
    it): the row holds m, the high word of C for acc >= 0 (2^(r-2) + out_zp * 2^(r-1)) and
    r - 1. Any other channel gets shift = -1: the kernel runs the reference arithmetic.
    """
    mult = np.atleast_1d(np.asarray(q["multiplier"], dtype=np.int64))
    shift = np.atleast_1d(np.asarray(q["shift"], dtype=np.int64))
    if mult.shape != shift.shape:
        raise ValueError(f"requant_dsp: {mult.size} multipliers but {shift.size} shifts")
    if np.any(mult < 0) or np.any(mult >= 1 << 31):
        raise ValueError("requant_dsp: multipliers must be in [0, 2^31)")
    out_zp = int(q["out_zp"])
    table = np.zeros((mult.size, 3), dtype=np.int64)
    table[:, 0] = mult
    r = -shift
    fast = (r >= RQ_DSP_MIN_RIGHT_SHIFT) & (r <= RQ_DSP_MAX_RIGHT_SHIFT)
    rf = np.where(fast, r, 2)
    table[:, 1] = np.where(fast, (np.int64(1) << (rf - 2)) + out_zp * (np.int64(1) << (rf - 1)), 0)
    table[:, 2] = np.where(fast, rf - 1, -1)
    return table.astype(np.int32)


def requant_dsp_reference(acc, table: np.ndarray, q: dict) -> np.ndarray:
    """What the C helper tt_requant_dsp computes for accumulators acc (..., channels), before
    the activation clamp, in numpy: the documentation of the table in executable form, used
    by the tests to check the formula on every int32 edge case."""
    from .fixedpoint import mul_by_quantized_multiplier
    acc = np.asarray(acc, dtype=np.int64)
    mult, hi, sh = (table[:, i].astype(np.int64) for i in range(3))
    lo_c = np.int64(1 << 30) - (acc < 0) * np.int64(1 << 31)
    c64 = hi * np.int64(1 << 32) + lo_c
    fast = np.clip((acc * mult + c64) >> (32 + np.maximum(sh, 0)), -128, 127)
    exact = np.clip(mul_by_quantized_multiplier(acc, q["multiplier"], q["shift"]) + q["out_zp"],
                    q["act_min"], q["act_max"])
    return np.where(sh >= 0, fast, exact)


def conv2d_dsp_scratch_bytes(kh: int, kw: int, cin: int) -> int:
    """tt_conv2d_s8_dsp_scratch_bytes: four int16 rows of K = kh*kw*cin (rounded up to a
    multiple of 4) and one int8 im2col row."""
    return 9 * ((kh * kw * cin + 3) & ~3)


def conv2d_mve_scratch_bytes(kh: int, kw: int, cin: int, cout: int) -> int:
    """tt_conv2d_s8_mve_scratch_bytes: cout int32 (rounded up to 4) of bias - in_zp * sum(w),
    then four im2col rows of K = kh*kw*cin bytes (rounded up to a multiple of 4)."""
    return 4 * ((cout + 3) & ~3) + 4 * ((kh * kw * cin + 3) & ~3)


# TT_DW_MAX_KH, TT_DW_DSP_MAX_TAPS / TT_DW_MVE_MAX_TAPS: the depthwise variants' limits
DW_MAX_KH = 8
DW_MAX_TAPS = 49
DW_RING_GROUP = {"dsp": 4, "mve": 8}     # channels per ring slot


def dw_inplace_scratch_bytes(variant: str, h: int, w: int, kh: int, kw: int, dil_h: int) -> int:
    """tt_depthwise_conv2d_inplace_s8_{dsp,mve}_scratch_bytes: a ring of the input rows one
    output row spans, `group` channels wide ((kh - 1) * dil_h + 1 rows of w * group bytes);
    kernels beyond the variants' limits run the reference, which needs its plane (h * w)."""
    if kh > DW_MAX_KH or kh * kw > DW_MAX_TAPS:
        return h * w
    return ((kh - 1) * dil_h + 1) * w * DW_RING_GROUP[variant]


def conv2d_scratch_bytes(variant: str, kh: int, kw: int, cin: int, cout: int) -> int:
    """The scratch of tt_conv2d_s8_<variant> (also the pointwise part of the fused kernel's)."""
    if variant == "dsp":
        return conv2d_dsp_scratch_bytes(kh, kw, cin)
    if variant == "mve":
        return conv2d_mve_scratch_bytes(kh, kw, cin, cout)
    raise ValueError(f"no conv2d variant {variant!r}")
