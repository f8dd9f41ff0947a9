"""Numpy reference of every op: int8 ops bit-exact with TFLite's reference kernels
(and so with firmware/kernels/*_s8.c), float32 ops in plain float math.

Two levels:
  * kernel functions (`conv2d_s8`, `add_s8`, ...) take arrays and the parameter dicts of
    tinytrain.quant, mirroring the C kernels one to one;
  * `run_op` / `run_graph` run IR ops and whole graphs, taking parameters from quant.py.
Activations are NHWC with batch 1 (arrays of shape (1, H, W, C)) or (1, features).
Integer arithmetic is done in int64 holding int32 values; matmuls run in float64, which
is exact here (|products| < 2^15, sums far below 2^53) and much faster than integer BLAS.
"""
from __future__ import annotations

import numpy as np

from . import quant
from .errors import TinyTrainError, UnsupportedError
from .ir import Graph, Op

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# --- fixed point (vectorized gemmlowp / TFLite arithmetic on int64 arrays) --------------------


def _i64(v) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def wrap32(v) -> np.ndarray:
    """Two's complement wraparound to int32 (what int32 adds do in C)."""
    return ((_i64(v) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def sat_rounding_doubling_high_mul(a, b) -> np.ndarray:
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    n = ab + nudge
    q = np.where(n >= 0, n >> 31, -((-n) >> 31))        # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def sat_rounding_mul_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT with a scalar exponent."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def mul_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding); multiplier/shift broadcast."""
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(sat_rounding_doubling_high_mul(wrap32(_i64(x) << left), multiplier), right)


def mul_by_quantized_multiplier_single_round(x, multiplier, shift) -> np.ndarray:
    """round(x * multiplier / 2^(31 - shift)), halves up (LiteRT's per-channel FC rescale)."""
    total = 31 - _i64(shift)
    return (_i64(x) * _i64(multiplier) + (np.int64(1) << (total - 1))) >> total


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
    a = _i64(a)
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
    s = _i64(a) + INT32_MAX                                   # RoundingHalfSum(a, One)
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + sat_rounding_mul_by_pot(srdhm(x, one_minus), 2))
    return sat_rounding_mul_by_pot(x, 1)


def _count_leading_zeros32(x) -> np.ndarray:
    x = _i64(x) & 0xFFFFFFFF
    n = np.full(x.shape, 32, dtype=np.int64)
    for b in range(32):
        n = np.where((x >> b) & 1 != 0, 31 - b, n)
    return n


def get_reciprocal(x, x_integer_digits: int):
    """TFLite GetReciprocal: (F0 reciprocal raw, num_bits_over_unit)."""
    x = _i64(x)
    headroom_plus_one = _count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap32(((x & 0xFFFFFFFF) << headroom_plus_one) - (1 << 31))
    return _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def _clamp_s8(v, lo: int, hi: int) -> np.ndarray:
    return np.clip(v, lo, hi).astype(np.int8)


def _round_half_away_f32(v: np.ndarray) -> np.ndarray:
    a = np.abs(v)
    r = np.floor(a)
    r = r + (a - r >= np.float32(0.5))
    return np.copysign(r, v).astype(np.float32)


# --- geometry --------------------------------------------------------------------------------


def _window_input(x: np.ndarray, out_hw, k, stride, pad, dilation, fill) -> np.ndarray:
    """x (H, W, C) placed in a buffer covering every tap of every output, borders = fill."""
    h, w, c = x.shape
    oh, ow = out_hw
    need_h = (oh - 1) * stride[0] + (k[0] - 1) * dilation[0] + 1
    need_w = (ow - 1) * stride[1] + (k[1] - 1) * dilation[1] + 1
    buf = np.full((need_h, need_w, c), fill, dtype=x.dtype)
    top, left = pad[0], pad[2]
    ys, xs = max(0, -top), max(0, -left)                         # negative pad crops
    ye, xe = min(h, need_h - top), min(w, need_w - left)
    if ye > ys and xe > xs:
        buf[top + ys:top + ye, left + xs:left + xe] = x[ys:ye, xs:xe]
    return buf


def _taps(buf: np.ndarray, out_hw, k, stride, dilation):
    """Yield (ky, kx, view (OH, OW, C)) of every kernel tap."""
    oh, ow = out_hw
    for ky in range(k[0]):
        y0 = ky * dilation[0]
        for kx in range(k[1]):
            x0 = kx * dilation[1]
            yield ky, kx, buf[y0:y0 + (oh - 1) * stride[0] + 1:stride[0],
                              x0:x0 + (ow - 1) * stride[1] + 1:stride[1]]


def _valid_count(in_hw, out_hw, k, stride, pad) -> np.ndarray:
    """Number of taps inside the input, per output position (pooling)."""
    counts = []
    for size, osz, kk, s, p in ((in_hw[0], out_hw[0], k[0], stride[0], pad[0]),
                                (in_hw[1], out_hw[1], k[1], stride[1], pad[2])):
        origin = np.arange(osz) * s - p
        counts.append(np.minimum(size, origin + kk) - np.maximum(0, origin))
    return np.maximum(counts[0][:, None], 0) * np.maximum(counts[1][None, :], 0)


# --- int8 kernels (mirroring the C kernels) ----------------------------------------------------


def _requant(acc, q: dict, channel_axis_len: int | None = None) -> np.ndarray:
    acc = mul_by_quantized_multiplier(acc, q["multiplier"], q["shift"]) + q["out_zp"]
    return _clamp_s8(acc, q["act_min"], q["act_max"])


def conv2d_s8(x, w, bias, stride, pad, dilation, q: dict, out_hw) -> np.ndarray:
    """x (H, W, Cin) int8, w (Cout, KH, KW, Cin) int8, bias (Cout,) int32 or None."""
    xs = x.astype(np.float64) - q["in_zp"]
    k = w.shape[1:3]
    buf = _window_input(xs, out_hw, k, stride, pad, dilation, 0.0)
    wf = w.astype(np.float64)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[0]), dtype=np.float64)
    for ky, kx, view in _taps(buf, out_hw, k, stride, dilation):
        acc += view @ wf[:, ky, kx, :].T
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += _i64(bias)
    return _requant(wrap32(acc), q)


def depthwise_conv2d_s8(x, w, bias, stride, pad, dilation, q: dict, out_hw) -> np.ndarray:
    """x (H, W, C) int8, w (KH, KW, C) int8."""
    xs = x.astype(np.int64) - q["in_zp"]
    k = w.shape[0:2]
    buf = _window_input(xs, out_hw, k, stride, pad, dilation, 0)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[2]), dtype=np.int64)
    wi = w.astype(np.int64)
    for ky, kx, view in _taps(buf, out_hw, k, stride, dilation):
        acc += view * wi[ky, kx]
    if bias is not None:
        acc += _i64(bias)
    return _requant(wrap32(acc), q)


def fully_connected_s8(x, w, bias, q: dict) -> np.ndarray:
    """x (..., I) int8, w (O, I) int8 -> (..., O)."""
    acc = ((x.astype(np.float64) - q["in_zp"]) @ w.astype(np.float64).T).astype(np.int64)
    if bias is not None:
        acc += _i64(bias)
    acc = mul_by_quantized_multiplier_single_round(wrap32(acc), q["multiplier"], q["shift"]) + q["out_zp"]
    return _clamp_s8(acc, q["act_min"], q["act_max"])


def add_s8(a, b, p: dict) -> np.ndarray:
    ls = 1 << p["left_shift"]
    a_scaled = mul_by_quantized_multiplier(wrap32((_i64(a) - p["a_zp"]) * ls), p["a_mult"], p["a_shift"])
    b_scaled = mul_by_quantized_multiplier(wrap32((_i64(b) - p["b_zp"]) * ls), p["b_mult"], p["b_shift"])
    out = mul_by_quantized_multiplier(wrap32(a_scaled + b_scaled), p["out_mult"], p["out_shift"]) + p["out_zp"]
    return _clamp_s8(out, p["act_min"], p["act_max"])


def _round_div_away(acc: np.ndarray, count) -> np.ndarray:
    """TFLite's (acc +- count/2) / count with C truncating division."""
    count = _i64(count)
    safe = np.maximum(count, 1)
    pos = (acc + safe // 2) // safe
    neg = -((-acc + safe // 2) // safe)
    return np.where(count > 0, np.where(acc > 0, pos, neg), acc)


def avg_pool2d_s8(x, k, stride, pad, act_min, act_max, out_hw) -> np.ndarray:
    buf = _window_input(x.astype(np.int64), out_hw, k, stride, pad, (1, 1), 0)
    acc = np.zeros((out_hw[0], out_hw[1], x.shape[2]), dtype=np.int64)
    for _, _, view in _taps(buf, out_hw, k, stride, (1, 1)):
        acc += view
    count = _valid_count(x.shape[:2], out_hw, k, stride, pad)[:, :, None]
    return _clamp_s8(_round_div_away(acc, count), act_min, act_max)


def max_pool2d_s8(x, k, stride, pad, act_min, act_max, out_hw) -> np.ndarray:
    buf = _window_input(x.astype(np.int64), out_hw, k, stride, pad, (1, 1), -128)
    m = np.full((out_hw[0], out_hw[1], x.shape[2]), -128, dtype=np.int64)
    for _, _, view in _taps(buf, out_hw, k, stride, (1, 1)):
        m = np.maximum(m, view)
    return _clamp_s8(m, act_min, act_max)


def global_avg_pool_s8(x, q: dict) -> np.ndarray:
    """x (H, W, C) -> (C,): LiteRT's reference int8 MEAN over H, W; q's multiplier carries
    in_scale / out_scale with 1/(H*W) folded in as LiteRT folds it (quant.mean_multiplier)."""
    acc = (x.astype(np.int64) - q["in_zp"]).sum(axis=(0, 1))
    acc = mul_by_quantized_multiplier(acc, q["multiplier"][0], q["shift"][0]) + q["out_zp"]
    return _clamp_s8(acc, q["act_min"], q["act_max"])


def relu_s8(x, q: dict) -> np.ndarray:
    v = q["out_zp"] + mul_by_quantized_multiplier(_i64(x) - q["in_zp"], q["multiplier"][0], q["shift"][0])
    return _clamp_s8(v, q["act_min"], q["act_max"])


def softmax_s8(x, p: dict) -> np.ndarray:
    """Softmax over the last axis, TFLite reference int8 (gemmlowp) arithmetic."""
    x = _i64(x)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= p["diff_min"]
    scaled = sat_rounding_doubling_high_mul(wrap32(diff << p["input_left_shift"]), p["input_multiplier"])
    e = exp_on_negative_values(scaled, quant.SOFTMAX_DIFF_INTEGER_BITS)
    # the F12 sum wraps like gemmlowp's int32 adds (it cannot for depth < 4096)
    sum_of_exps = wrap32(np.where(valid, sat_rounding_mul_by_pot(e, -12), 0).sum(axis=-1, keepdims=True))
    shifted_scale, bits_over_unit = get_reciprocal(sum_of_exps, 12)
    unsat = rounding_divide_by_pot(sat_rounding_doubling_high_mul(shifted_scale, e), bits_over_unit + 31 - 8)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)


def pad_s8(x, pad, value: int) -> np.ndarray:
    top, bottom, left, right = pad
    return np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=np.int8(value)).astype(np.int8)


def quantize_f32_s8(x, scale: float, zp: int) -> np.ndarray:
    r = _round_half_away_f32(np.asarray(x, np.float32) / np.float32(scale))
    r = np.nan_to_num(np.clip(r, -1024, 1024), nan=0.0)
    return np.clip(r.astype(np.int64) + zp, -128, 127).astype(np.int8)


def dequantize_s8_f32(x, scale: float, zp: int) -> np.ndarray:
    return (np.float32(scale) * (np.asarray(x, np.int64) - zp).astype(np.float32)).astype(np.float32)


# --- float32 ops -------------------------------------------------------------------------------


def _activate_f32(v: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(v, 0)
    if act == "relu6":
        return np.clip(v, 0, 6)
    return v


def conv2d_f32(x, w, bias, stride, pad, dilation, act, out_hw) -> np.ndarray:
    k = w.shape[1:3]
    buf = _window_input(x.astype(np.float64), out_hw, k, stride, pad, dilation, 0.0)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[0]))
    for ky, kx, view in _taps(buf, out_hw, k, stride, dilation):
        acc += view @ w[:, ky, kx, :].T.astype(np.float64)
    if bias is not None:
        acc += bias
    return _activate_f32(acc, act).astype(np.float32)


def depthwise_conv2d_f32(x, w, bias, stride, pad, dilation, act, out_hw) -> np.ndarray:
    k = w.shape[0:2]
    buf = _window_input(x.astype(np.float64), out_hw, k, stride, pad, dilation, 0.0)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[2]))
    for ky, kx, view in _taps(buf, out_hw, k, stride, dilation):
        acc += view * w[ky, kx].astype(np.float64)
    if bias is not None:
        acc += bias
    return _activate_f32(acc, act).astype(np.float32)


def avg_pool2d_f32(x, k, stride, pad, act, out_hw) -> np.ndarray:
    """Mean of the taps inside the input (TFLite: padding is not counted)."""
    buf = _window_input(x.astype(np.float64), out_hw, k, stride, pad, (1, 1), 0.0)
    acc = np.zeros((out_hw[0], out_hw[1], x.shape[2]))
    for _, _, view in _taps(buf, out_hw, k, stride, (1, 1)):
        acc += view
    count = _valid_count(x.shape[:2], out_hw, k, stride, pad)[:, :, None]
    return _activate_f32(acc / np.maximum(count, 1), act).astype(np.float32)


def max_pool2d_f32(x, k, stride, pad, act, out_hw) -> np.ndarray:
    buf = _window_input(x.astype(np.float32), out_hw, k, stride, pad, (1, 1), -np.inf)
    m = np.full((out_hw[0], out_hw[1], x.shape[2]), -np.inf, dtype=np.float32)
    for _, _, view in _taps(buf, out_hw, k, stride, (1, 1)):
        m = np.maximum(m, view)
    return _activate_f32(m, act).astype(np.float32)


def softmax_f32(x, beta: float = 1.0) -> np.ndarray:
    z = (x.astype(np.float64) - x.max(axis=-1, keepdims=True)) * beta
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


# --- IR ops and graphs -------------------------------------------------------------------------


def _geometry(op: Op):
    a = op.attrs
    return (tuple(a.get("stride", (1, 1))), tuple(a.get("pad", (0, 0, 0, 0))),
            tuple(a.get("dilation", (1, 1))))


def _hwc(v: np.ndarray, op: Op) -> np.ndarray:
    if v.ndim != 4 or v.shape[0] != 1:
        raise TinyTrainError(f"layer {op.name!r}: {op.type} expects a (1, H, W, C) input, got {v.shape}")
    return v[0]


def _run_int8(graph: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    out = graph.tensors[op.outputs[0]]
    t = op.type
    act = op.attrs.get("activation", "none")
    if t in ("conv2d", "depthwise_conv2d"):
        stride, pad, dil = _geometry(op)
        q = quant.conv_requant(graph, op)
        fn = conv2d_s8 if t == "conv2d" else depthwise_conv2d_s8
        return fn(_hwc(args[0], op), args[1], args[2] if len(args) > 2 else None,
                  stride, pad, dil, q, out.shape[1:3])[None]
    if t == "fully_connected":
        q = quant.conv_requant(graph, op)
        x = args[0].reshape(1, -1)
        return fully_connected_s8(x, args[1], args[2] if len(args) > 2 else None, q)
    if t == "add":
        if args[0].shape != args[1].shape:
            raise UnsupportedError(op.name, f"broadcasting add of {args[0].shape} and {args[1].shape}")
        return add_s8(args[0], args[1], quant.add_params(graph, op))
    if t in ("avg_pool2d", "max_pool2d"):
        stride, pad, _ = _geometry(op)
        p = quant.pool_params(graph, op)
        fn = avg_pool2d_s8 if t == "avg_pool2d" else max_pool2d_s8
        return fn(_hwc(args[0], op), tuple(op.attrs["kernel"]), stride, pad,
                  p["act_min"], p["act_max"], out.shape[1:3])[None]
    if t == "global_avg_pool":
        return global_avg_pool_s8(_hwc(args[0], op), quant.global_avg_pool_params(graph, op)).reshape(out.shape)
    if t in ("relu", "relu6"):
        return relu_s8(args[0], quant.relu_params(graph, op))
    if t == "softmax":
        return softmax_s8(args[0], quant.softmax_params(graph, op))
    if t == "pad":
        return pad_s8(_hwc(args[0], op), tuple(op.attrs["pad"]), quant.pad_value(graph, op))[None]
    if t == "dequantize":
        x = graph.tensors[op.inputs[0]]
        return dequantize_s8_f32(args[0], x.scale, x.zero_point)
    raise UnsupportedError(op.name, f"int8 op {t!r}")


def _run_f32(graph: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    out = graph.tensors[op.outputs[0]]
    t = op.type
    act = op.attrs.get("activation", "none")
    if t in ("conv2d", "depthwise_conv2d"):
        stride, pad, dil = _geometry(op)
        fn = conv2d_f32 if t == "conv2d" else depthwise_conv2d_f32
        return fn(_hwc(args[0], op), args[1], args[2] if len(args) > 2 else None,
                  stride, pad, dil, act, out.shape[1:3])[None]
    if t == "fully_connected":
        y = args[0].reshape(1, -1).astype(np.float64) @ args[1].T.astype(np.float64)
        if len(args) > 2:
            y = y + args[2]
        return _activate_f32(y, act).astype(np.float32)
    if t == "add":
        return _activate_f32(args[0].astype(np.float64) + args[1], act).astype(np.float32)
    if t in ("avg_pool2d", "max_pool2d"):
        stride, pad, _ = _geometry(op)
        fn = avg_pool2d_f32 if t == "avg_pool2d" else max_pool2d_f32
        return fn(_hwc(args[0], op), tuple(op.attrs["kernel"]), stride, pad, act, out.shape[1:3])[None]
    if t == "global_avg_pool":
        return _hwc(args[0], op).astype(np.float64).mean(axis=(0, 1)).astype(np.float32).reshape(out.shape)
    if t in ("relu", "relu6"):
        return _activate_f32(args[0], t).astype(np.float32)
    if t == "softmax":
        return softmax_f32(args[0], float(op.attrs.get("beta", 1.0)))
    if t == "pad":
        top, bottom, left, right = op.attrs["pad"]
        return np.pad(args[0], ((0, 0), (top, bottom), (left, right), (0, 0))).astype(np.float32)
    if t == "quantize":
        return quantize_f32_s8(args[0], out.scale, out.zero_point)
    raise UnsupportedError(op.name, f"float32 op {t!r}")


def run_op(graph: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    """One op on its input arrays (constants included, in op.inputs order)."""
    out = graph.tensors[op.outputs[0]]
    if op.type == "pointwise_depthwise_conv2d":
        # the two original ops, with the same requantization of the intermediate
        from .passes import split_op
        pw, dw = split_op(op)
        mid = run_op(graph, pw, args[:3])
        y = run_op(graph, dw, [mid, *args[3:]])
    elif op.type == "reshape":
        y = np.asarray(args[0]).reshape(out.shape)
    elif graph.tensors[op.inputs[0]].dtype == "int8":
        y = _run_int8(graph, op, args)
    else:
        y = _run_f32(graph, op, args)
    return np.asarray(y).reshape(out.shape)


def run_graph(graph: Graph, inputs: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run the graph op by op. Returns the graph outputs (every tensor if keep_all)."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise TinyTrainError(f"graph input {name!r} not given")
        t = graph.tensors[name]
        v = np.asarray(inputs[name])
        if v.size != t.size:
            raise TinyTrainError(f"graph input {name!r}: {v.shape} does not match {t.shape}")
        values[name] = v.astype(t.dtype if t.dtype != "int32" else np.int32).reshape(t.shape)
    for t in graph.constants():
        values[t.name] = t.data
    for op in graph.ops:
        values[op.outputs[0]] = run_op(graph, op, [values[n] for n in op.inputs])
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}
