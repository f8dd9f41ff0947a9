"""exp and log in float32, bit for bit as firmware/include/tt_math.h computes them.

The C libraries do not agree on expf/logf (newlib's on the Cortex-M4F and glibc's differ
by one ulp on a few percent of inputs), so the training step's softmax cross-entropy uses
tt_expf / tt_logf, built only from operations IEEE 754 rounds exactly, in a fixed order.
This module repeats those operations in numpy float32 (vectorized), so the host simulation
computes the same bits as the device. tests/test_ieee_math.py checks both against each
other on many inputs, and against math.exp / math.log.

Also here: sequential float32 sums (the C loops' order; numpy's sum is pairwise).
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


def _c(hexfloat: str) -> np.float32:
    """A float32 constant written as the C hex literal of tt_math.h (exact, no decimal rounding)."""
    return F32(float.fromhex(hexfloat))


_EXP_MAX, _EXP_MIN = _c("0x1.62e430p+6"), _c("-0x1.9fe36ap+6")
_LOG2E = _c("0x1.715476p+0")
_LN2_HI, _LN2_LO = _c("0x1.63p-1"), _c("-0x1.bd0106p-13")
_EXP_P = [_c(h) for h in ("0x1.a0d2cep-13", "0x1.6e879cp-10", "0x1.111210p-7", "0x1.555382p-5",
                          "0x1.555554p-3", "0x1.000000p-1")]
_SQRT_HALF = _c("0x1.6a09e6p-1")
# tt_logf's polynomial, with the sign each line of the C applies folded in
_LOG_P = [_c(h) for h in ("0x1.204376p-4", "-0x1.d7a370p-4", "0x1.de4a34p-4", "-0x1.fcba9ep-4",
                          "0x1.23d37ep-3", "-0x1.555ca0p-3", "0x1.999d58p-3", "-0x1.fffff8p-3",
                          "0x1.555554p-2")]


def _pow2i(n: np.ndarray) -> np.ndarray:
    """2^n as float32 for integer n in [-126, 127] (exponent bits)."""
    return ((n.astype(np.int64) + 127).astype(np.uint32) << np.uint32(23)).view(F32)


def expf(x) -> np.ndarray:
    """tt_expf, element-wise (float32 in, float32 out)."""
    x = np.asarray(x, F32)
    shape = x.shape
    x = x.reshape(-1)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        xs = np.clip(x, _EXP_MIN, _EXP_MAX)             # the special cases are patched below
        z = np.floor(xs * _LOG2E + F32(0.5))
        n = z.astype(np.int32)
        r = xs - z * _LN2_HI
        r = r - z * _LN2_LO
        rr = r * r
        p = np.full_like(r, _EXP_P[0])
        for c in _EXP_P[1:]:
            p = p * r + c
        p = p * rr + r
        p = p + F32(1.0)
        big = n > 127
        p = np.where(big, p * F32(2.0), p)
        n = np.where(big, n - 1, n)
        small = n < -126
        y = np.where(small, (p * _pow2i(np.where(small, n + 126, 0))) * _pow2i(np.full_like(n, -126)),
                     p * _pow2i(np.where(small, 0, n)))
    y = np.where(x > _EXP_MAX, F32(np.inf), y)
    y = np.where(x < _EXP_MIN, F32(0.0), y)
    y = np.where(np.isnan(x), x, y)
    return y.astype(F32).reshape(shape)


def logf(x) -> np.ndarray:
    """tt_logf, element-wise (float32 in, float32 out)."""
    x = np.asarray(x, F32)
    shape = x.shape
    x = x.reshape(-1)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        bits = x.view(np.uint32)
        sub = bits < 0x00800000
        v = np.where(sub, x * F32(2.0 ** 24), x)
        e = np.where(sub, -24, 0).astype(np.int32)
        vb = v.view(np.uint32)
        e = e + (vb >> np.uint32(23)).astype(np.int32) - 126
        m = ((vb & np.uint32(0x007FFFFF)) | np.uint32(0x3F000000)).view(F32)
        low = m < _SQRT_HALF
        e = np.where(low, e - 1, e)
        m = np.where(low, m + m - F32(1.0), m - F32(1.0))
        z = m * m
        y = np.full_like(m, _LOG_P[0])
        for c in _LOG_P[1:]:
            y = y * m + c
        y = y * m * z
        fe = e.astype(F32)
        y = y + fe * _LN2_LO
        y = y - F32(0.5) * z
        m = m + y
        out = m + fe * _LN2_HI
    out = np.where(x == 0, F32(-np.inf), out)
    out = np.where(x < 0, F32(np.nan), out)
    out = np.where(np.isposinf(x), x, out)
    out = np.where(np.isnan(x), x, out)
    return out.astype(F32).reshape(shape)


def sum_sequential(x) -> np.float32:
    """((x[0] + x[1]) + x[2]) + ... in float32: a C loop's sum (np.sum adds pairwise)."""
    x = np.asarray(x, F32).reshape(-1)
    return F32(np.cumsum(x, dtype=F32)[-1]) if x.size else F32(0.0)
