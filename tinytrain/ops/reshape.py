"""reshape: the same values in another shape (the output tensor's). In the arena its output
is a view of the input's bytes (the planners alias them), so it usually emits no code."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .base import OpUnit, same_dtype


class Reshape(OpUnit):
    type = "reshape"
    summary = "same values, another shape (no code: an arena alias)"
    aliases_input = True

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if x.size != y.size:
            raise UnsupportedError(op.name, f"reshape of {x.shape} to {y.shape}")

    def run(self, g, op, args):
        return np.asarray(args[0]).reshape(g.tensors[op.outputs[0]].shape)

    def emit(self, em, op):
        x, y = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
        if em.arena[op.inputs[0]].offset == em.arena[op.outputs[0]].offset:
            return ["/* reshape: a view of the same arena bytes */"]
        return [f"memmove({y}, {x}, {em.graph.tensors[op.outputs[0]].nbytes});"]

    def emit_backward(self, em, op, step, t):
        return self.emit_pass_through(em, op, step, t)

    def vjp(self, ctx, op, dy, step):
        shape = ctx.graph.tensors[op.inputs[0]].shape
        return {x: dy.reshape(shape) for x in step.grad_inputs}, {}


UNIT = Reshape()
