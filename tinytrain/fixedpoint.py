"""Fixed-point arithmetic of TFLite's int8 kernels (gemmlowp), vectorized in numpy.

Operation for operation the arithmetic of firmware/include/tt_fixedpoint.h, on int64 arrays
holding int32 values, so the numpy references of the op units are bit-exact with the C
kernels and with LiteRT's reference kernels.
"""
from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# --- fixed point (vectorized gemmlowp / TFLite arithmetic on int64 arrays) --------------------


def i64(v) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def wrap32(v) -> np.ndarray:
    """Two's complement wraparound to int32 (what int32 adds do in C)."""
    return ((i64(v) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def add_bias_s32(acc, bias) -> np.ndarray:
    """A conv-like int8 kernel's sums (exact, int64; C accumulates them in int32) plus the
    bias, saturated to int32: the C reference's tt_sat_add_s32. LiteRT's reference kernels
    add with a plain int32 `+=` (undefined on overflow, wrap-around in practice); the two
    differ only where a bias meets a sum at the int32 limit (imported models' dead channels
    hold -2^31: MCUNet-5FPS's first layer), and there saturation keeps such a channel off
    (docs/kernels.md, "The bias and the int32 limits")."""
    acc = wrap32(acc)
    if bias is None:
        return acc
    return np.clip(acc + i64(bias), -(1 << 31), (1 << 31) - 1)


def sat_rounding_doubling_high_mul(a, b) -> np.ndarray:
    a, b = i64(a), i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    n = ab + nudge
    q = np.where(n >= 0, n >> 31, -((-n) >> 31))        # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    x, e = i64(x), i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def sat_rounding_mul_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT with a scalar exponent."""
    x = i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def mul_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding); multiplier/shift broadcast."""
    shift = i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(sat_rounding_doubling_high_mul(wrap32(i64(x) << left), multiplier), right)


def mul_by_quantized_multiplier_single_round(x, multiplier, shift) -> np.ndarray:
    """round(x * multiplier / 2^(31 - shift)), halves up (LiteRT's per-channel FC rescale)."""
    total = 31 - i64(shift)
    return (i64(x) * i64(multiplier) + (np.int64(1) << (total - 1))) >> total


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    srdhm = sat_rounding_doubling_high_mul
    constant_term, constant_1_over_3 = 1895147668, 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_rounding_mul_by_pot(x4, -2)
    poly = sat_rounding_mul_by_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


_EXP_BARREL = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)  # exp(-2^k), k=-2..4


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: a (<= 0) with `integer_bits` integer bits -> F0."""
    a = i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(sat_rounding_mul_by_pot(a_mod, integer_bits))
    remainder = wrap32(a_mod - a)
    for k, mult in zip(range(-2, 5), _EXP_BARREL):
        if integer_bits > k:
            bit = (remainder >> (fractional_bits + k)) & 1
            result = np.where(bit != 0, sat_rounding_doubling_high_mul(result, mult), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    srdhm = sat_rounding_doubling_high_mul
    s = i64(a) + INT32_MAX                                   # RoundingHalfSum(a, One)
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + sat_rounding_mul_by_pot(srdhm(x, one_minus), 2))
    return sat_rounding_mul_by_pot(x, 1)


def _count_leading_zeros32(x) -> np.ndarray:
    x = i64(x) & 0xFFFFFFFF
    n = np.full(x.shape, 32, dtype=np.int64)
    for b in range(32):
        n = np.where((x >> b) & 1 != 0, 31 - b, n)
    return n


def get_reciprocal(x, x_integer_digits: int):
    """TFLite GetReciprocal: (F0 reciprocal raw, num_bits_over_unit)."""
    x = i64(x)
    headroom_plus_one = _count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap32(((x & 0xFFFFFFFF) << headroom_plus_one) - (1 << 31))
    return _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def clamp_s8(v, lo: int, hi: int) -> np.ndarray:
    return np.clip(v, lo, hi).astype(np.int8)


def round_half_away_f32(v: np.ndarray) -> np.ndarray:
    a = np.abs(v)
    r = np.floor(a)
    r = r + (a - r >= np.float32(0.5))
    return np.copysign(r, v).astype(np.float32)


def requantize_s8(acc, q: dict) -> np.ndarray:
    """An int32 accumulator -> int8 output: TFLite's MultiplyByQuantizedMultiplier with the
    op's (per-channel) multiplier/shift, the output zero point, the activation clamp."""
    acc = mul_by_quantized_multiplier(acc, q["multiplier"], q["shift"]) + q["out_zp"]
    return clamp_s8(acc, q["act_min"], q["act_max"])
