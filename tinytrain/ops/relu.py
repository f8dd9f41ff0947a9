"""relu and relu6 as standalone ops (when not fused into their producer).
int8: TFLite's RELU / RELU6 with requantization (input and output scales may differ)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..fixedpoint import clamp_s8, i64, mul_by_quantized_multiplier
from ..ir import ACT_CODES
from ..errors import UnsupportedError
from .base import OpUnit, input_shape, same_dtype
from .window import activate_f32


def relu_s8(x, q: dict) -> np.ndarray:
    v = q["out_zp"] + mul_by_quantized_multiplier(i64(x) - q["in_zp"], q["multiplier"][0], q["shift"][0])
    return clamp_s8(v, q["act_min"], q["act_max"])


class _Relu(OpUnit):
    channelwise = True
    float16 = True          # relu_f16.c (exact: a selection)

    def from_tflite(self, r, name, kind, op, ins, outs):
        return r.unary(name, self.type, ins, outs)

    def output_shape(self, g, op):
        return input_shape(g, op)

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)

    def params(self, g, op):
        return quant.relu_params(g, op, self.type)

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])

    def activation(self, op):
        return self.type

    def ref_s8(self, g, op, args):
        return relu_s8(args[0], self.params(g, op))

    def ref_f32(self, g, op, args):
        return activate_f32(np.asarray(args[0], np.float32), self.type)

    def ref_f16(self, g, op, args):
        from . import f16
        return f16.activate(f16.f32(args[0]), self.type)

    def emit(self, em, op):
        g = em.graph
        n = g.tensors[op.outputs[0]].size
        if self.is_int8(g, op):
            return [em.call(em.kernel("tt_relu_s8"), em.ptr(op.inputs[0]), n,
                            em.requant(op, self.params(g, op)), em.ptr(op.outputs[0]))]
        sfx = "f16" if g.tensors[op.inputs[0]].dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_relu_{sfx}"), em.ptr(op.inputs[0]), n, ACT_CODES[self.type],
                        em.ptr(op.outputs[0]))]

    def emit_backward(self, em, op, step, t):
        return self.emit_pass_through(em, op, step, t)

    def vjp(self, ctx, op, dy, step):
        return {x: dy for x in step.grad_inputs}, {}     # the mask did the work


class Relu(_Relu):
    type = "relu"
    summary = "max(x, 0)"
    tflite_ops = ("RELU",)
    keras_layers = ("ReLU",)

    def from_keras(self, imp, layer, ins, outs, cfg):
        """A Keras ReLU layer: relu, or relu6 with max_value 6; fused into its producer when
        nothing else reads that output."""
        slope = float(cfg.get("negative_slope", 0.0) or 0.0)
        threshold = float(cfg.get("threshold", 0.0) or 0.0)
        max_value = cfg.get("max_value")
        if slope != 0.0 and threshold == 0.0 and max_value is None:
            imp.emit(layer, "leaky_relu", [imp.input(layer, ins[0])], outs[0], {"alpha": slope})
            return
        if slope != 0.0 or threshold != 0.0:
            raise UnsupportedError(layer.name, f"ReLU with negative_slope {slope}, threshold {threshold}")
        if max_value is None:
            imp.relu_like(layer, ins, outs, "relu")
        elif float(max_value) == 6.0:
            imp.relu_like(layer, ins, outs, "relu6")
        else:
            raise UnsupportedError(layer.name, f"ReLU max_value {max_value} (None or 6 only)")


class Relu6(_Relu):
    type = "relu6"
    summary = "min(max(x, 0), 6)"
    tflite_ops = ("RELU6",)


UNITS = [Relu(), Relu6()]
