"""softmax over the last axis. Attribute: beta. int8: TFLite's reference softmax (gemmlowp
exp and reciprocal; output quantization 1/256, -128)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..fixedpoint import (exp_on_negative_values, get_reciprocal, i64, rounding_divide_by_pot,
                          sat_rounding_doubling_high_mul, sat_rounding_mul_by_pot, wrap32)
from . import f16
from .base import OpUnit, input_shape, same_dtype


def softmax_s8(x, p: dict) -> np.ndarray:
    """Softmax over the last axis, TFLite reference int8 (gemmlowp) arithmetic."""
    x = i64(x)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= p["diff_min"]
    scaled = sat_rounding_doubling_high_mul(wrap32(diff << p["input_left_shift"]), p["input_multiplier"])
    e = exp_on_negative_values(scaled, quant.SOFTMAX_DIFF_INTEGER_BITS)
    # the F12 sum wraps like gemmlowp's int32 adds (it cannot for depth < 4096)
    sum_of_exps = wrap32(np.where(valid, sat_rounding_mul_by_pot(e, -12), 0).sum(axis=-1, keepdims=True))
    shifted_scale, bits_over_unit = get_reciprocal(sum_of_exps, 12)
    exponent = bits_over_unit + 31 - 8
    unsat = rounding_divide_by_pot(sat_rounding_doubling_high_mul(shifted_scale, e), exponent)
    out = np.clip(unsat - 128, -128, 127)
    # a sum of exponentials >= 512 (exponent > 31; LiteRT aborts there, see
    # docs/architecture.md): every probability is below half a step and rounds to 0
    return np.where(valid & (exponent <= 31), out, -128).astype(np.int8)


def softmax_f32(x, beta: float = 1.0) -> np.ndarray:
    z = (x.astype(np.float64) - x.max(axis=-1, keepdims=True)) * beta
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def softmax_backward(y, dy, beta=1.0):
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    return (beta * y64 * (dy64 - (dy64 * y64).sum(axis=-1, keepdims=True))).astype(np.float32)


class Softmax(OpUnit):
    channelwise = True
    type = "softmax"
    summary = "softmax over the last axis (int8: a row whose exponentials sum to >= 512, where LiteRT aborts, is -128)"
    attrs = {"beta": 1.0}
    tflite_ops = ("SOFTMAX",)
    loss_reads_input = True
    keras_layers = ("Softmax",)
    keras_activations = ("softmax",)
    # softmax_f16.c, softmax_backward_f16.c: inside a graph; a final softmax stays float32
    # after the output's cast (tinytrain/precision.py), where the loss reads its input
    float16 = True

    def from_keras(self, imp, layer, ins, outs, cfg):
        x = imp.input(layer, ins[0])
        axis = cfg.get("axis", -1)
        rank = len(imp.tensors[x].shape)
        if axis not in (-1, rank - 1) and axis != [-1]:
            raise UnsupportedError(layer.name, f"softmax over axis {axis} (last axis only)")
        imp.emit(layer, self.type, [x], outs[0], {"beta": 1.0})

    def from_tflite(self, r, name, kind, op, ins, outs):
        opts = r.options(op, r.s.SoftmaxOptions)
        return r.unary(name, self.type, ins, outs, {"beta": float(opts.Beta()) if opts is not None else 1.0})

    def output_shape(self, g, op):
        return input_shape(g, op)

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)

    def params(self, g, op):
        return quant.softmax_params(g, op)

    def _rows(self, g, op) -> tuple[int, int]:
        y = g.tensors[op.outputs[0]]
        return y.size // y.shape[-1], y.shape[-1]

    def ref_s8(self, g, op, args):
        _, depth = self._rows(g, op)
        return softmax_s8(args[0].reshape(-1, depth), self.params(g, op))

    def ref_f32(self, g, op, args):
        _, depth = self._rows(g, op)
        return softmax_f32(args[0].reshape(-1, depth), float(self.attr(op, "beta")))

    def ref_f16(self, g, op, args):
        if float(self.attr(op, "beta")) != 1.0:
            raise UnsupportedError(op.name, "float16 softmax with beta != 1")
        _, depth = self._rows(g, op)
        return f16.softmax(np.asarray(args[0]).reshape(-1, depth))

    def emit(self, em, op):
        g = em.graph
        rows, depth = self._rows(g, op)
        x, y = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
        if self.is_int8(g, op):
            p = self.params(g, op)
            params = em.struct("tt_softmax_params", "smp_" + op.name, input_multiplier=int(p["input_multiplier"]),
                               input_left_shift=int(p["input_left_shift"]), diff_min=int(p["diff_min"]))
            return [em.call(em.kernel("tt_softmax_s8"), x, rows, depth, params, y)]
        if g.tensors[op.outputs[0]].dtype == "float16":
            if float(self.attr(op, "beta")) != 1.0:
                raise UnsupportedError(op.name, "float16 softmax with beta != 1")
            return [em.call(em.kernel("tt_softmax_f16"), x, rows, depth, y)]
        return [em.call(em.kernel("tt_softmax_f32"), x, rows, depth, y)]

    def backward_reads(self, g, op):
        return {"y": op.outputs[0]}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        y = em.graph.tensors[op.outputs[0]]
        if y.dtype not in ("float32", "float16"):
            raise UnsupportedError(op.name, "int8 softmax inside a training graph (only as the last op)")
        if float(self.attr(op, "beta")) != 1.0:
            raise UnsupportedError(op.name, "softmax beta != 1 inside a training graph")
        rows, depth = self._rows(em.graph, op)
        sfx = "f16" if y.dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_softmax_grad_input_{sfx}"), rows, depth, t.view(op.outputs[0]),
                        t.grad(step.grad_out), t.acc(step, x), t.grad(step.grad_inputs[x]))]

    def vjp(self, ctx, op, dy, step):
        if not step.grad_inputs:
            return {}, {}
        dt = ctx.graph.tensors[op.outputs[0]].dtype
        if dt == "float16":
            _, depth = self._rows(ctx.graph, op)
            y = ctx.real(op.outputs[0]).reshape(-1, depth)
            return {op.inputs[0]: f16.softmax_grad(y, np.asarray(dy).reshape(-1, depth))}, {}
        if dt != "float32":
            raise UnsupportedError(op.name, "int8 softmax inside a training graph (only as the last op)")
        y = ctx.real(op.outputs[0])
        return {op.inputs[0]: softmax_backward(y, dy, float(self.attr(op, "beta")))}, {}


UNIT = Softmax()
