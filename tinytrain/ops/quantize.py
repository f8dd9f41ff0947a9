"""quantize (float32 -> int8) and dequantize (int8 -> float32) at the edges of a graph,
with the int8 tensor's scale and zero point (TFLite's QUANTIZE / DEQUANTIZE)."""
from __future__ import annotations

import numpy as np

from ..cgen.cformat import c_float, CExpr
from ..errors import UnsupportedError
from ..fixedpoint import round_half_away_f32
from .base import OpUnit, input_shape


def quantize_f32_s8(x, scale: float, zp: int) -> np.ndarray:
    r = round_half_away_f32(np.asarray(x, np.float32) / np.float32(scale))
    r = np.nan_to_num(np.clip(r, -1024, 1024), nan=0.0)
    return np.clip(r.astype(np.int64) + zp, -128, 127).astype(np.int8)


def dequantize_s8_f32(x, scale: float, zp: int) -> np.ndarray:
    return (np.float32(scale) * (np.asarray(x, np.int64) - zp).astype(np.float32)).astype(np.float32)


class _Convert(OpUnit):
    channelwise = True
    src, dst = "", ""

    def from_tflite(self, r, name, kind, op, ins, outs):
        return r.unary(name, self.type, ins, outs)

    def output_shape(self, g, op):
        return input_shape(g, op)

    def check(self, g, op):
        super().check(g, op)
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if (x.dtype, y.dtype) != (self.src, self.dst):
            raise UnsupportedError(op.name, f"{self.type.upper()} {x.dtype} -> {y.dtype} "
                                            f"({self.src} -> {self.dst} only)")

    def quantized(self, g, op):
        """The int8 side of the conversion."""
        return g.tensors[op.outputs[0] if self.dst == "int8" else op.inputs[0]]

    def emit(self, em, op):
        g = em.graph
        q = self.quantized(g, op)
        fn = em.kernel(f"tt_{self.type}_{'f32_s8' if self.dst == 'int8' else 's8_f32'}")
        return [em.call(fn, em.ptr(op.inputs[0]), g.tensors[op.outputs[0]].size, CExpr(c_float(q.scale)),
                        q.zero_point, em.ptr(op.outputs[0]))]

    def emit_backward(self, em, op, step, t):
        return self.emit_pass_through(em, op, step, t)

    def vjp(self, ctx, op, dy, step):
        return {x: dy for x in step.grad_inputs}, {}       # straight through


class Quantize(_Convert):
    type = "quantize"
    summary = "float32 -> int8 (the graph input)"
    src, dst = "float32", "int8"
    tflite_ops = ("QUANTIZE",)

    def ref_f32(self, g, op, args):
        q = self.quantized(g, op)
        return quantize_f32_s8(args[0], q.scale, q.zero_point)


class Dequantize(_Convert):
    type = "dequantize"
    summary = "int8 -> float32 (the graph output)"
    src, dst = "int8", "float32"
    tflite_ops = ("DEQUANTIZE",)

    def ref_s8(self, g, op, args):
        q = self.quantized(g, op)
        return dequantize_s8_f32(args[0], q.scale, q.zero_point)


UNITS = [Quantize(), Dequantize()]
