"""maximum / minimum: the larger (smaller) of a and b, broadcast (either may be a constant).

int8: LiteRT's reference MAXIMUM / MINIMUM (MaximumMinimumBroadcastSlow, one path for every
shape) compares the raw int8 values and ignores the quantization; the converter gives both
inputs and the output one scale and zero point. A model whose quantizations differ would
compare values of different meaning there, and is refused.

Gradient (TensorFlow's _MaximumGrad / _MinimumGrad): to a where a >= b (a <= b for minimum),
else to b; ties go to a. The kernels test each operand: x gets it where x > other (<), or ties
with it as the first operand, so a NaN on either side sends it nowhere (TensorFlow would give
it to b).

float16 (maximum_f16.c, maximum_backward_f16.c; Helium maximum_f16_mve.c, the same bits): the
float32 kernels' selection `a > b ? a : b` on the widened halves, storing the selected half's
bits (a NaN first operand gives b, a NaN second gives the NaN, as in float32); the gradient is
grad_y or +0 by the rule above, exact for an operand of the output's shape (added to an old
gradient in one rounding), summed in float32 over the broadcast axes and rounded once for one
that broadcasts."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import f16
from .elementwise import BinaryOp, bcast_fields, reduce_to


class _MaxMin(BinaryOp):
    attrs: dict = {}
    fused_activation = False
    keras_inputs = None
    pick = None                     # np.maximum / np.minimum
    float16 = True                  # maximum_f16.c, maximum_backward_f16.c; Helium maximum_f16_mve.c

    def check(self, g, op):
        super().check(g, op)
        if self.is_int8(g, op):
            qs = {(round(float(g.tensors[t].scale), 12), g.tensors[t].zero_point) for t in (*op.inputs, *op.outputs)}
            if len(qs) != 1:
                raise UnsupportedError(op.name, f"int8 {op.type.upper()} of operands quantized differently "
                                                f"{sorted(qs)} (LiteRT compares the raw int8 values)")

    def clamp(self, g, op):
        return None

    def s8(self, a, b, p):
        return type(self).pick(np.asarray(a, np.int8), np.asarray(b, np.int8))

    def f32(self, a, b):
        """The C kernels' `a > b ? a : b` (`a < b ? a : b`): with a NaN they return b (np.maximum
        would return the NaN either way)."""
        with np.errstate(invalid="ignore"):
            take_a = a < b if self.type == "minimum" else a > b
        return np.where(take_a, a, b)

    def ref_f16(self, g, op, args):
        a, b = self.operands(g, op, args)
        return f16.select(a, b, self.type == "minimum")

    def emit(self, em, op):
        g = em.graph
        a, b, out = em.ptr(op.inputs[0]), em.ptr(op.inputs[1]), em.ptr(op.outputs[0])
        t = self._dt(g.tensors[op.outputs[0]].dtype)
        allowed = {"mve": True} if t == "f16" else None     # the Helium selects: the same bits
        if self.broadcasts(g, op):
            return [em.call(em.kernel(f"tt_{self.type}_bcast_{t}", allowed), a, b, self.bcast(em, op), out)]
        return [em.call(em.kernel(f"tt_{self.type}_{t}", allowed), a, b, g.tensors[op.outputs[0]].size, out)]

    @staticmethod
    def _dt(dtype: str) -> str:
        return {"int8": "s8", "float16": "f16"}.get(dtype, "f32")

    # --- training ------------------------------------------------------------------------------
    def wins(self, x, other, first: bool) -> np.ndarray:
        """Where operand x (the first operand if `first`) receives the gradient."""
        raise NotImplementedError

    def backward_reads(self, g, op):
        return {role: t for role, t in (("a", op.inputs[0]), ("b", op.inputs[1])) if not g.tensors[t].is_const}

    def backward_unsupported(self, g, op):
        if g.tensors[op.outputs[0]].dtype == "float16" and op.inputs[0] == op.inputs[1]:
            return f"backward of a float16 {op.type} of a tensor with itself"
        return None

    def vjp(self, ctx, op, dy, step):
        g = ctx.graph
        y_shape = g.tensors[op.outputs[0]].shape
        vals = [np.broadcast_to(ctx.real(t).reshape(g.tensors[t].shape), y_shape) for t in op.inputs]
        half = g.tensors[op.outputs[0]].dtype == "float16"
        grads: dict[str, np.ndarray] = {}
        for k, x in enumerate(op.inputs):
            if x in step.grad_inputs and half:      # the float32 values the _f16 kernels round once
                fields = bcast_fields(g.tensors[x].shape, g.tensors[op.inputs[1 - k]].shape, y_shape)
                grads[x] = f16.select_grad(np.reshape(dy, y_shape), vals[k], vals[1 - k], k == 0,
                                           self.type == "minimum", fields, g.tensors[x].shape)
            elif x in step.grad_inputs:
                d = np.where(self.wins(vals[k], vals[1 - k], k == 0), dy, np.float32(0)).astype(np.float32)
                d = reduce_to(d, g.tensors[x].shape)
                grads[x] = grads[x] + d if x in grads else d
        return grads, {}

    def emit_backward(self, em, op, step, t):
        g = em.graph
        lines, done = [], set()
        for k, x in enumerate(op.inputs):
            if x not in step.grad_inputs:
                continue
            other = op.inputs[1 - k]
            dt = self._dt(g.tensors[x].dtype)
            acc = 1 if x in done else t.acc(step, x)
            if dt != "f16":
                fn = em.kernel(f"tt_{self.type}_grad_input_{dt}")
            elif g.tensors[x].size == g.tensors[op.outputs[0]].size:     # x walks as the output
                fn = em.kernel(f"tt_{self.type}_grad_input_f16", allowed={"mve": True})    # the same bits
            else:
                fn = em.kernel(f"tt_{self.type}_grad_bcast_f16")
            lines.append(em.call(fn, self.bcast(em, op, x), em.ptr(x),
                                 em.ptr(other), int(k == 0), t.grad(step.grad_out), acc,
                                 t.grad(step.grad_inputs[x])))
            done.add(x)
        return lines


class Maximum(_MaxMin):
    type = "maximum"
    summary = "larger of a and b, broadcast (constant operands allowed)"
    tflite_ops = ("MAXIMUM",)
    keras_layers = ("Maximum",)
    keras_ops = ("Maximum",)
    pick = staticmethod(np.maximum)

    def wins(self, x, other, first):
        return x >= other if first else x > other


class Minimum(_MaxMin):
    type = "minimum"
    summary = "smaller of a and b, broadcast (constant operands allowed)"
    tflite_ops = ("MINIMUM",)
    keras_layers = ("Minimum",)
    keras_ops = ("Minimum",)
    pick = staticmethod(np.minimum)

    def wins(self, x, other, first):
        return x <= other if first else x < other


UNITS = [Maximum(), Minimum()]
