"""Fixed-point parameters of int8 ops, computed from the IR exactly as TFLite does.

This is the one place these numbers come from: the C code generator and the numpy
reference (refops.py) both call it, so device and host simulation cannot drift apart.
Scales in the IR are float64 holding the exact float32 values of the source model;
where TFLite computes in float32 (activation clamps, relu multiplier) we do too.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import TinyTrainError, UnsupportedError
from .ir import Graph, Op, Tensor

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20               # TFLite's headroom for int8 ADD
SOFTMAX_DIFF_INTEGER_BITS = 5     # TFLite's kScaledDiffIntegerBits


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ~= multiplier * 2^(shift - 31), multiplier in Q31."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise TinyTrainError(f"cannot quantize multiplier {real!r}")
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:            # everything would be shifted out: TFLite uses 0
        return 0, 0
    if q_fixed > 2**31 - 1:
        raise TinyTrainError(f"multiplier {real!r} out of range")
    return int(q_fixed), int(shift)


def _round_half_away(v: float) -> int:
    """std::round on a double: halves go away from zero."""
    a = abs(v)
    r = math.floor(a)
    if a - r >= 0.5:           # exact for doubles, unlike floor(a + 0.5)
        r += 1
    return int(math.copysign(r, v))


def _round_half_away_f32(v: np.float32) -> int:
    """std::round on a float (roundf)."""
    a = np.abs(np.float32(v))
    r = np.floor(a)
    if a - r >= np.float32(0.5):
        r += np.float32(1.0)
    return int(math.copysign(float(r), float(v)))


def _quantize_f32(value: float, scale: float, zero_point: int) -> int:
    """TFLite's `zero_point + round(f / scale)` with float32 arithmetic."""
    return int(zero_point) + _round_half_away_f32(np.float32(value) / np.float32(scale))


def activation_range(act: str, out_scale: float, out_zp: int) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output."""
    if act == "none":
        return INT8_MIN, INT8_MAX
    if act == "relu":
        return max(INT8_MIN, _quantize_f32(0.0, out_scale, out_zp)), INT8_MAX
    if act == "relu6":
        return (max(INT8_MIN, _quantize_f32(0.0, out_scale, out_zp)),
                min(INT8_MAX, _quantize_f32(6.0, out_scale, out_zp)))
    raise TinyTrainError(f"unsupported activation {act!r}")


# --- helpers -----------------------------------------------------------------------------

def _tensors(graph: Graph, op: Op) -> tuple[Tensor, Tensor]:
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    for t in (x, y):
        if t.dtype != "int8" or t.quant is None:
            raise UnsupportedError(op.name, f"{op.type} on tensor {t.name!r} of dtype {t.dtype} "
                                            f"without int8 quantization")
        if t.quant.per_channel or t.quant.scale.size != 1:
            raise UnsupportedError(op.name, f"per-channel quantization of activation {t.name!r}")
    return x, y


def _multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(r) for r in reals]
    return (np.array([m for m, _ in pairs], dtype=np.int32),
            np.array([s for _, s in pairs], dtype=np.int32))


# --- per op --------------------------------------------------------------------------------

def conv_requant(graph: Graph, op: Op, out_channels: int | None = None) -> dict:
    """Requantization of an op of inputs [x, weight, ...] (conv2d, depthwise_conv2d,
    fully_connected): one multiplier per output channel, replicated for per-tensor weights,
    as TFLite does. out_channels: the weight's output channels (default: its first axis)."""
    x, y = _tensors(graph, op)
    w = graph.tensors[op.inputs[1]]
    if w.dtype != "int8" or w.quant is None:
        raise UnsupportedError(op.name, f"weights {w.name!r} of dtype {w.dtype} (int8 expected)")
    if np.any(w.quant.zero_point != 0):
        raise UnsupportedError(op.name, f"asymmetric weights {w.name!r} (zero point must be 0)")
    out_channels = w.shape[0] if out_channels is None else out_channels
    w_scales = w.quant.scale
    if w_scales.size == 1:
        w_scales = np.repeat(w_scales, out_channels)
    elif w_scales.size != out_channels:
        raise TinyTrainError(f"layer {op.name!r}: {w_scales.size} weight scales for "
                             f"{out_channels} output channels")
    in_scale, out_scale = x.scale, y.scale
    mult, shift = _multipliers(in_scale * float(s) / out_scale for s in w_scales)
    act_min, act_max = activation_range(op.attrs.get("activation", "none"), out_scale, y.zero_point)
    return dict(in_zp=x.zero_point, out_zp=y.zero_point, act_min=act_min, act_max=act_max,
                multiplier=mult, shift=shift)


def add_params(graph: Graph, op: Op) -> dict:
    """Fields of tt_add_params (TFLite ADD Prepare, int8 general rescaling)."""
    a = graph.tensors[op.inputs[0]]
    b = graph.tensors[op.inputs[1]]
    _tensors(graph, Op(op.name, op.type, [op.inputs[1]], op.outputs))
    _, y = _tensors(graph, op)
    twice_max = 2.0 * max(a.scale, b.scale)
    a_mult, a_shift = quantize_multiplier(a.scale / twice_max)
    b_mult, b_shift = quantize_multiplier(b.scale / twice_max)
    out_mult, out_shift = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * y.scale))
    act_min, act_max = activation_range(op.attrs.get("activation", "none"), y.scale, y.zero_point)
    return dict(a_zp=a.zero_point, b_zp=b.zero_point, out_zp=y.zero_point,
                a_mult=a_mult, a_shift=a_shift, b_mult=b_mult, b_shift=b_shift,
                out_mult=out_mult, out_shift=out_shift, left_shift=ADD_LEFT_SHIFT,
                act_min=act_min, act_max=act_max)


def softmax_params(graph: Graph, op: Op) -> dict:
    """Fields of tt_softmax_params (TFLite PreprocessSoftmaxScaling / CalculateInputRadius)."""
    x, y = _tensors(graph, op)
    if y.zero_point != -128 or abs(y.scale - 1.0 / 256) > 0.001 / 256:
        raise UnsupportedError(op.name, "int8 softmax output quantization other than 1/256, -128")
    beta = float(np.float32(op.attrs.get("beta", 1.0)))     # TFLite stores beta as float32
    bits = SOFTMAX_DIFF_INTEGER_BITS
    real = min(beta * x.scale * (1 << (31 - bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise UnsupportedError(op.name, f"softmax input scale {x.scale} too small")
    max_rescaled = 1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift)
    diff_min = -int(math.floor(max_rescaled))
    return dict(input_multiplier=mult, input_left_shift=left_shift, diff_min=diff_min)


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """(multiplier, shift) that take the sum of `count` zero-point-corrected int8 values to
    the output's mean, as LiteRT's reference int8 MEAN does (reference_ops::QuantizedMeanOrSum,
    the path every int8 MEAN takes in LiteRT 2.3, whatever keep_dims and the scales):
    QuantizeMultiplier(in_scale / out_scale) in double, then 1/count folded in with integer
    arithmetic, truncating: multiplier << k // count, shift - k, where k = floor(log2(count))
    clamped to 32 and to 31 + shift (so MultiplyByQuantizedMultiplier's right shift stays
    <= 31). Folding 1/count into the double first differs by one LSB on 2-10% of outputs."""
    if count < 1:
        raise TinyTrainError(f"mean over {count} elements")
    mult, shift = quantize_multiplier(in_scale / out_scale)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // count), int(shift - k)


def global_avg_pool_params(graph: Graph, op: Op) -> dict:
    """tt_requant fields of the int8 mean over H, W (see mean_multiplier). The kernel sums
    (x - in_zp), which equals LiteRT's sum(x) - in_zp * count in int32."""
    x, y = _tensors(graph, op)
    if len(x.shape) != 4:
        raise UnsupportedError(op.name, f"global_avg_pool of a rank-{len(x.shape)} tensor")
    mult, shift = mean_multiplier(x.scale, y.scale, x.shape[1] * x.shape[2])
    return dict(in_zp=x.zero_point, out_zp=y.zero_point, act_min=INT8_MIN, act_max=INT8_MAX,
                multiplier=np.array([mult], dtype=np.int32), shift=np.array([shift], dtype=np.int32))


def relu_params(graph: Graph, op: Op, kind: str) -> dict:
    """tt_requant fields of a standalone `kind` ("relu" or "relu6"; TFLite ReluPrepare +
    QuantizedReluX). TFLite divides the two float32 scales in float32 here, unlike conv."""
    x, y = _tensors(graph, op)
    real = float(np.float32(x.scale) / np.float32(y.scale))
    mult, shift = quantize_multiplier(real)
    act_min, act_max = activation_range(kind, y.scale, y.zero_point)
    return dict(in_zp=x.zero_point, out_zp=y.zero_point, act_min=act_min, act_max=act_max,
                multiplier=np.array([mult], dtype=np.int32), shift=np.array([shift], dtype=np.int32))


def pool_params(graph: Graph, op: Op) -> dict:
    """act_min/act_max of int8 avg/max pooling; TFLite requires equal in/out quantization."""
    x, y = _tensors(graph, op)
    if x.zero_point != y.zero_point or not np.isclose(x.scale, y.scale, rtol=1e-6):
        raise UnsupportedError(op.name, f"{op.type} with different input and output quantization")
    act_min, act_max = activation_range(op.attrs.get("activation", "none"), y.scale, y.zero_point)
    return dict(act_min=act_min, act_max=act_max)


def pad_value(graph: Graph, op: Op) -> int:
    """The int8 value padding writes: the output's zero point (a real 0.0)."""
    _, y = _tensors(graph, op)
    return y.zero_point
