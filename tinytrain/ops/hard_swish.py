"""hard_swish: x * relu6(x + 3) / 6 (MobileNetV3's activation). One input, same shape out.

int8: LiteRT's reference HardSwish (reference/hard_swish.h) with the parameters of its
HardSwishPrepare: 16-bit fixed-point throughout, the input on a "hires" scale s_in / 128, a
"reluish" factor in [0, 1] from the input rescaled so that 3.0 is 32768, and the output
multiplier applied before a final right shift (LiteRT requires that shift, i.e. it refuses
s_in / 128 > s_out).

float16: the portable kernel computes in float and rounds once (hard_swish_f16); the Helium
variant computes in half lanes (hard_swish_f16_mve, chosen per layer by
tinytrain.precision.half_variants and modelled as the board runs it). Below -3 both give -0
(the limit) without multiplying: -inf * 0 would be a NaN whose sign is the host's.
"""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..fixedpoint import i64
from . import f16
from .base import OpUnit, input_shape, same_dtype
from .leaky_relu import half_product

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def _downscale_to_int16(multiplier: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier: a Q31 multiplier as Q15, rounded."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> dict:
    """HardSwishPrepare: float32 scale arithmetic, QuantizeMultiplier in double, Q15."""
    f32 = np.float32
    hires = f32(1.0 / 128.0) * f32(in_scale)
    reluish_scale = f32(3.0 / 32768.0)
    out_mult, out_exp = quant.quantize_multiplier(float(hires / f32(out_scale)))
    relu_mult, relu_exp = quant.quantize_multiplier(float(hires / reluish_scale))
    return dict(input_zp=int(in_zp), output_zp=int(out_zp),
                reluish_multiplier=_downscale_to_int16(relu_mult), reluish_exponent=int(relu_exp),
                output_multiplier=_downscale_to_int16(out_mult), output_exponent=int(out_exp))


def _srdhm16(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 values."""
    a, b = i64(a), i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    n = ab + nudge
    q = np.where(n >= 0, n >> 15, -((-n) >> 15))          # C division truncates toward zero
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def _sdhm16(a, b) -> np.ndarray:
    """TFLite SaturatingDoublingHighMul on int16 (like SQDMULH: truncating, no rounding)."""
    a, b = i64(a), i64(b)
    ab = a * b
    q = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def _rdbp16(x, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT on int16 values: its mask (1 << exponent) - 1 is an int16,
    which wraps to -1 for exponents of 16 and more (results then round up by one)."""
    x = i64(x)
    mask = ((1 << exponent) - 1 + (1 << 15)) % (1 << 16) - (1 << 15)
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _wrap16(v) -> np.ndarray:
    return (i64(v) + (1 << 15)) % (1 << 16) - (1 << 15)


def _sat_left_shift16(v, amount: int) -> np.ndarray:
    return np.clip(i64(v) * (1 << amount), INT16_MIN, INT16_MAX)


def hard_swish_s8(x, p: dict) -> np.ndarray:
    """LiteRT's reference int8 HardSwish, operation for operation (int16 intermediates)."""
    v = i64(x) - p["input_zp"]
    hires = v * (1 << 7)                                   # |255 * 128| fits int16
    preshift = _srdhm16(hires, p["output_multiplier"])
    reluish = hires
    e = p["reluish_exponent"]
    if e > 0:
        reluish = _sat_left_shift16(reluish, e - 1)
    reluish = _srdhm16(reluish, p["reluish_multiplier"])
    if e > 0:
        reluish = _sat_left_shift16(reluish, 1)
    if e < 0:
        reluish = _rdbp16(reluish, -e)
    reluish = (reluish + (1 << 15)) >> 1                   # [-1, 1] -> [0, 1] in Q15
    out = _sdhm16(reluish, preshift)
    out = _wrap16(_rdbp16(out, -p["output_exponent"]) + p["output_zp"])   # an int16 +=, as in C
    return np.clip(out, -128, 127).astype(np.int8)


def hard_swish_f32(x) -> np.ndarray:
    """TFLite's float HardSwish: in * min(6, max(0, in + 3)) / 6, in float32."""
    x = np.asarray(x, np.float32)
    return (x * np.minimum(np.float32(6), np.maximum(np.float32(0), x + np.float32(3)))) / np.float32(6)


def hard_swish_grad(x, dy) -> np.ndarray:
    """d/dx: 0 below -3, 1 above 3, (2x + 3) / 6 between (float32, as the C kernel)."""
    x, dy = np.asarray(x, np.float32), np.asarray(dy, np.float32)
    mid = (np.float32(2) * x + np.float32(3)) / np.float32(6)
    d = np.where(x < -3, np.float32(0), np.where(x > 3, np.float32(1), mid)).astype(np.float32)
    return (dy * d).astype(np.float32)


F16, F32 = np.float16, np.float32
SIXTH, THIRD, HALF = F16(1.0 / 6.0), F16(1.0 / 3.0), F16(0.5)     # the Helium variant's constants


@f16._ieee
def hard_swish_f16(x) -> np.ndarray:
    """tt_hard_swish_f16: float32 r = x + 3, c = clamp(r, 0, 6), half((x * c) / 6); -0 below -3,
    a NaN as it came."""
    x = np.asarray(x, F16)
    v = f16.f32(x)
    r = (v + F32(3)).astype(F32)
    c = np.where(r > 6, F32(6), r)
    y = ((v * c).astype(F32) / F32(6)).astype(F32)
    return np.where(np.isnan(x), x, np.where(r < 0, F16(-0.0), y.astype(F16)))


@f16._ieee
def hard_swish_f16_mve(x) -> np.ndarray:
    """tt_hard_swish_f16_mve, in half: r = x + 3, c = min(max(r, 0), 6), t = c * half(1/6),
    y = x * t (each rounded to half: vaddq, vmaxnmq, vminnmq, vmulq; maxnm / minnm return the
    number beside a NaN, as np.fmax / np.fmin); -0 below -3, a NaN as it came."""
    x = np.asarray(x, F16)
    r = (f16.f32(x) + F32(3)).astype(F16)
    c = np.fmin(np.fmax(r, F16(0)), F16(6))
    y = half_product(x, half_product(c, SIXTH))
    return np.where(np.isnan(x), x, np.where(r < 0, F16(-0.0), y))


@f16._ieee
def hard_swish_grad_f16(x, dy) -> np.ndarray:
    """tt_hard_swish_grad_input_f16 before the store (float32): 0 below -3, dy above 3,
    dy * ((2x + 3) / 6) between, the default NaN at a NaN x."""
    v, d = f16.f32(x), f16.f32(dy)
    mid = (d * (((F32(2) * v).astype(F32) + F32(3)).astype(F32) / F32(6)).astype(F32)).astype(F32)
    g = np.where(v < -3, F32(0), np.where(v > 3, d, mid))
    return np.where(np.isnan(v), F32(np.nan), g).astype(F32)


@f16._ieee
def hard_swish_grad_f16_mve(x, dy) -> np.ndarray:
    """tt_hard_swish_grad_input_f16_mve before the store, in half: 0 below -3, dy above 3,
    dy * fma(x, half(1/3), 1/2) between (vfmaq_f16, one rounding; then vmulq_f16); as float32
    (exact): the store keeps it or adds the old value in one rounding (vaddq_f16). The
    default NaN at a NaN x."""
    x, dy = np.asarray(x, F16), np.asarray(dy, F16)
    g = half_product(dy, f16.fma16(x, THIRD, HALF))
    g = np.where(x < -3, F16(0), np.where(x > 3, dy, g))
    return np.where(np.isnan(x), F16(np.nan), g).astype(F32)


class HardSwish(OpUnit):
    type = "hard_swish"
    summary = "x * relu6(x + 3) / 6 (MobileNetV3)"
    channelwise = True
    tflite_ops = ("HARD_SWISH",)
    keras_activations = ("hard_swish", "hard_silu")     # Keras 3 names it hard_silu
    float16 = True      # hard_swish_f16.c, hard_swish_backward_f16.c; Helium: hard_swish_f16_mve.c

    def output_shape(self, g, op):
        return input_shape(g, op)

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)
        if self.is_int8(g, op) and self.params(g, op)["output_exponent"] > 0:
            raise UnsupportedError(op.name, "int8 HARD_SWISH with input scale / 128 > output scale "
                                            "(LiteRT refuses it too)")

    def params(self, g, op):
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return hard_swish_params(x.scale, x.zero_point, y.scale, y.zero_point)

    def ref_s8(self, g, op, args):
        return hard_swish_s8(args[0], self.params(g, op))

    def ref_f32(self, g, op, args):
        return hard_swish_f32(args[0])

    def helium(self, op) -> bool:
        """The layer runs the Helium half variants (tinytrain.precision.half_variants)."""
        return op.attrs.get("f16_variant") == "mve"

    def ref_f16(self, g, op, args):
        return (hard_swish_f16_mve if self.helium(op) else hard_swish_f16)(args[0])

    def from_tflite(self, r, name, kind, op, ins, outs):
        return r.unary(name, self.type, ins, outs)

    def emit(self, em, op):
        g = em.graph
        n = g.tensors[op.outputs[0]].size
        x, y = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
        if self.is_int8(g, op):
            params = em.struct("tt_hard_swish_params", "hsp_" + op.name, **self.params(g, op))
            return [em.call(em.kernel("tt_hard_swish_s8"), x, n, params, y)]
        if g.tensors[op.inputs[0]].dtype == "float16":
            return [em.call(em.kernel("tt_hard_swish_f16", allowed={"mve": self.helium(op)}), x, n, y)]
        return [em.call(em.kernel("tt_hard_swish_f32"), x, n, y)]

    # --- training: the gradient needs the input ---------------------------------------------
    def backward_reads(self, g, op):
        return {"x": op.inputs[0]}

    def vjp(self, ctx, op, dy, step):
        if not step.grad_inputs:
            return {}, {}
        if ctx.graph.tensors[op.inputs[0]].dtype == "float16":
            fn = hard_swish_grad_f16_mve if self.helium(op) else hard_swish_grad_f16
            return {op.inputs[0]: fn(ctx.real(op.inputs[0]), dy)}, {}
        return {op.inputs[0]: hard_swish_grad(ctx.real(op.inputs[0]), dy)}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        xt = em.graph.tensors[x]
        gy, gx, acc = t.grad(step.grad_out), t.grad(step.grad_inputs[x]), t.acc(step, x)
        if xt.dtype == "int8":
            return [em.call(em.kernel("tt_hard_swish_grad_input_s8"), xt.size, t.view(x), t.act_quant(x),
                            gy, acc, gx)]
        if xt.dtype == "float16":
            return [em.call(em.kernel("tt_hard_swish_grad_input_f16", allowed={"mve": self.helium(op)}), xt.size,
                            t.view(x), gy, acc, gx)]
        return [em.call(em.kernel("tt_hard_swish_grad_input_f32"), xt.size, t.view(x), gy, acc, gx)]


UNIT = HardSwish()
