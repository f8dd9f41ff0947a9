"""add: a + b, broadcast (tinytrain/ops/elementwise.py: either operand may be a constant, e.g.
the shift of a standalone batch normalisation or of Keras Rescaling). Attribute: activation.

int8: LiteRT's reference ADD (reference_integer_ops::Add for equal shapes,
BroadcastAdd6DSlow otherwise; the same AddFunc on both): both inputs moved to twice the
larger input scale with 2^20 headroom, summed, rescaled to the output. Its Prepare asks
QuantizeMultiplierSmallerThanOneExp for the output multiplier, which aborts for a multiplier
of 1 or more (an output scale below 2 * max input scale / 2^20): refused here too."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..fixedpoint import clamp_s8, i64, mul_by_quantized_multiplier, wrap32
from . import f16
from .elementwise import BinaryOp, bcast_fields, reduce_to

ADD_FIELDS = ("a_zp", "b_zp", "out_zp", "a_mult", "a_shift", "b_mult", "b_shift",
              "out_mult", "out_shift", "left_shift", "act_min", "act_max")


def scaled_operands(a, b, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Both operands on the common scale (LiteRT's AddFunc / SubElementwise, up to the sum)."""
    ls = 1 << p["left_shift"]
    a_scaled = mul_by_quantized_multiplier(wrap32((i64(a) - p["a_zp"]) * ls), p["a_mult"], p["a_shift"])
    b_scaled = mul_by_quantized_multiplier(wrap32((i64(b) - p["b_zp"]) * ls), p["b_mult"], p["b_shift"])
    return a_scaled, b_scaled


def add_s8(a, b, p: dict) -> np.ndarray:
    a_scaled, b_scaled = scaled_operands(a, b, p)
    out = mul_by_quantized_multiplier(wrap32(a_scaled + b_scaled), p["out_mult"], p["out_shift"]) + p["out_zp"]
    return clamp_s8(out, p["act_min"], p["act_max"])


def check_output_multiplier(op, p: dict, kind: str) -> None:
    if p["out_shift"] > 0:
        raise UnsupportedError(op.name, f"int8 {kind} whose output scale is below 2^-20 of its inputs' "
                                        f"(output multiplier >= 1: LiteRT's kernel cannot run it)")


class Add(BinaryOp):
    type = "add"
    summary = "a + b, broadcast (constant operands allowed), fused relu/relu6"
    attrs = {"activation": "none"}
    tflite_ops = ("ADD",)
    keras_layers = ("Add",)
    keras_inputs = None                 # two or more: a chain of adds
    keras_ops = ("Add",)
    s8_variants = {"mve": True}         # tt_add_s8_mve: the reference's arguments and bytes
    float16 = True          # add_f16.c (and sub_f16.c for Sub); Helium: add_f16_mve.c, the same bits

    def check(self, g, op):
        super().check(g, op)
        if self.is_int8(g, op):
            check_output_multiplier(op, self.params(g, op), "ADD")

    def params(self, g, op):
        return quant.add_params(g, op)

    def s8(self, a, b, p):
        return add_s8(a, b, p)

    def f32(self, a, b):
        return (a.astype(np.float64) + b).astype(np.float32)

    def params_struct(self, em, op):
        p = self.params(em.graph, op)
        return em.struct("tt_add_params", "addp_" + op.name, **{k: int(p[k]) for k in ADD_FIELDS})

    # --- training: d a = d y, d b = d y (summed over what each broadcast) ----------------------
    signs = (1.0, 1.0)

    def backward_unsupported(self, g, op):
        if g.tensors[op.outputs[0]].dtype == "float16" and op.inputs[0] == op.inputs[1]:
            return f"backward of a float16 {op.type} of a tensor with itself"
        return None

    def vjp(self, ctx, op, dy, step):
        g = ctx.graph
        half = g.tensors[op.outputs[0]].dtype == "float16"
        y = g.tensors[op.outputs[0]]
        grads: dict[str, np.ndarray] = {}
        for x, sign in zip(op.inputs, self.signs):
            if x in step.grad_inputs:
                if half:      # the float32 sums tt_add_grad(_bcast)_f16 round once
                    shape = g.tensors[x].shape
                    d = f16.f32(dy).reshape(shape) if shape == y.shape and sign == 1.0 else \
                        f16.add_grad_bcast(dy, self._grad_fields(g, op, x), sign, shape)
                    grads[x] = d
                    continue
                d = reduce_to(dy * np.float32(sign), g.tensors[x].shape)
                grads[x] = grads[x] + d if x in grads else d
        return grads, {}

    @staticmethod
    def _grad_fields(g, op, x) -> dict:
        """The tt_bcast of operand x's gradient (x's strides as a), as BinaryOp.bcast makes it."""
        other = op.inputs[1] if x == op.inputs[0] else op.inputs[0]
        return bcast_fields(g.tensors[x].shape, g.tensors[other].shape, g.tensors[op.outputs[0]].shape)

    def emit_backward(self, em, op, step, t):
        g = em.graph
        y = g.tensors[op.outputs[0]]
        lines, done = [], set()
        for x, sign in zip(op.inputs, self.signs):
            if x not in step.grad_inputs:
                continue
            acc = 1 if x in done else t.acc(step, x)
            gy, gx = t.grad(step.grad_out), t.grad(step.grad_inputs[x])
            if y.dtype == "float16":
                if g.tensors[x].shape == y.shape and sign == 1.0:
                    lines.append(em.call(em.kernel("tt_add_grad_f16", allowed={"mve": True}), gx, gy, y.size)
                                 if acc else f"memcpy({gx}, {gy}, {2 * y.size});")
                else:
                    lines.append(em.call(em.kernel("tt_add_grad_bcast_f16"), gy, self.bcast(em, op, x),
                                         float(sign), acc, gx))
                done.add(x)
                continue
            if g.tensors[x].shape == y.shape and sign == 1.0:
                lines.append(em.call("tt_add_grad_f32", gx, gy, y.size) if acc else f"memcpy({gx}, {gy}, {4 * y.size});")
            else:
                lines.append(em.call(em.kernel("tt_add_grad_bcast_f32"), gy, self.bcast(em, op, x),
                                     float(sign), acc, gx))
            done.add(x)
        return lines


UNIT = Add()
