"""add: elementwise a + b of two activations of the same shape (no broadcasting).
Attribute: activation. int8: TFLite's reference ADD (general rescaling, left shift 20)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..fixedpoint import clamp_s8, i64, mul_by_quantized_multiplier, wrap32
from ..ir import ACT_CODES
from .base import OpUnit, same_dtype
from .window import activate_f32


def add_s8(a, b, p: dict) -> np.ndarray:
    ls = 1 << p["left_shift"]
    a_scaled = mul_by_quantized_multiplier(wrap32((i64(a) - p["a_zp"]) * ls), p["a_mult"], p["a_shift"])
    b_scaled = mul_by_quantized_multiplier(wrap32((i64(b) - p["b_zp"]) * ls), p["b_mult"], p["b_shift"])
    out = mul_by_quantized_multiplier(wrap32(a_scaled + b_scaled), p["out_mult"], p["out_shift"]) + p["out_zp"]
    return clamp_s8(out, p["act_min"], p["act_max"])


class Add(OpUnit):
    channelwise = True
    type = "add"
    summary = "elementwise sum of two same-shaped tensors, fused relu/relu6"
    attrs = {"activation": "none"}
    tflite_ops = ("ADD",)
    tflite_inputs = 2
    keras_layers = ("Add",)
    keras_inputs = 2

    def from_keras(self, imp, layer, ins, outs, cfg):
        a, b = (imp.input(layer, t) for t in ins)
        if imp.tensors[a].shape != imp.tensors[b].shape:
            raise UnsupportedError(layer.name, f"broadcasting Add of {imp.tensors[a].shape} and "
                                               f"{imp.tensors[b].shape}")
        imp.emit(layer, self.type, [a, b], outs[0], {"activation": "none"})

    def from_tflite(self, r, name, kind, op, ins, outs):
        from ..ir import Op
        a, b = r.activation(name, ins[0]), r.activation(name, ins[1])
        y = r.activation(name, outs[0])      # its shape: check() (it may be left to output_shape)
        if r.tensors[a].shape != r.tensors[b].shape:
            raise UnsupportedError(name, f"broadcasting add of {r.tensors[a].shape} and {r.tensors[b].shape}")
        return Op(name, self.type, [a, b], [y], {"activation": r.fused(name, r.options(op, r.s.AddOptions))})

    def output_shape(self, g, op):
        import numpy as np
        return tuple(np.broadcast_shapes(*(g.tensors[t].shape for t in op.inputs)))

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)
        shapes = {g.tensors[t].shape for t in (*op.inputs, *op.outputs)}
        if len(op.inputs) != 2 or len(shapes) != 1:
            raise UnsupportedError(op.name, f"broadcasting add of {[g.tensors[t].shape for t in op.inputs]}")

    def params(self, g, op):
        return quant.add_params(g, op)

    def ref_s8(self, g, op, args):
        return add_s8(args[0], args[1], self.params(g, op))

    def ref_f32(self, g, op, args):
        return activate_f32((args[0].astype(np.float64) + args[1]).astype(np.float32), self.attr(op, "activation"))

    def emit(self, em, op):
        g = em.graph
        y = g.tensors[op.outputs[0]]
        a, b, out = em.ptr(op.inputs[0]), em.ptr(op.inputs[1]), em.ptr(op.outputs[0])
        if self.is_int8(g, op):
            p = self.params(g, op)
            params = em.struct("tt_add_params", "addp_" + op.name, **{
                k: int(p[k]) for k in ("a_zp", "b_zp", "out_zp", "a_mult", "a_shift", "b_mult", "b_shift",
                                       "out_mult", "out_shift", "left_shift", "act_min", "act_max")})
            return [em.call(em.kernel("tt_add_s8"), a, b, y.size, params, out)]
        return [em.call(em.kernel("tt_add_f32"), a, b, y.size, ACT_CODES[self.attr(op, "activation")], out)]

    def emit_backward(self, em, op, step, t):
        return self.emit_pass_through(em, op, step, t)

    def vjp(self, ctx, op, dy, step):
        return {x: dy for x in step.grad_inputs}, {}

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])


UNIT = Add()
