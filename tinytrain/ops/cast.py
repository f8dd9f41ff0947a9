"""cast: float32 <-> float16 at the edges of a half-precision graph (tinytrain.precision).

A graph compiled with precision fp16 / mixed keeps its input and output in float32 (the
link, the host runners and the loss see what they see for a float32 model) and converts
at its edges. float32 -> half rounds to nearest even, half -> float32 is exact. In the
backward, the gradient of the logits enters half precision through the output's cast:
half(d output * loss scale) (the loss scale of the training step, tt_loss_scale).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .base import OpUnit, input_shape

FLOATS = ("float32", "float16")


class Cast(OpUnit):
    type = "cast"
    summary = "float32 <-> float16 at the edges of a half-precision graph"
    int8 = False
    float16 = True

    def check(self, g, op):
        super().check(g, op)
        dts = (g.tensors[op.inputs[0]].dtype, g.tensors[op.outputs[0]].dtype)
        if set(dts) != set(FLOATS):
            raise UnsupportedError(op.name, f"cast from {dts[0]} to {dts[1]} (float32 <-> float16 only)")

    def output_shape(self, g, op):
        return input_shape(g, op)

    def _to(self, g, op) -> str:
        return g.tensors[op.outputs[0]].dtype

    def ref_f32(self, g, op, args):
        return np.asarray(args[0], np.float32).astype(np.float16)

    def ref_f16(self, g, op, args):
        return np.asarray(args[0], np.float16).astype(np.float32)

    def emit(self, em, op):
        n = em.graph.tensors[op.inputs[0]].size
        fn = "tt_cast_f32_to_f16" if self._to(em.graph, op) == "float16" else "tt_cast_f16_to_f32"
        return [em.call(em.kernel(fn), em.ptr(op.inputs[0]), n, em.ptr(op.outputs[0]))]

    # --- training: only the output's cast (half -> float32) lies where a gradient flows ----
    def backward_unsupported(self, g, op):
        if self._to(g, op) == "float16":
            return "backward of a cast to float16 (the graph input needs no gradient)"
        return None

    def vjp(self, ctx, op, dy, step):
        """d input = d output * loss scale, in float32 (the simulation rounds it to half)."""
        scale = np.float32(getattr(ctx, "loss_scale_value", 1.0))
        return {op.inputs[0]: (np.asarray(dy, np.float32) * scale).astype(np.float32)}, {}

    def emit_backward(self, em, op, step, t):
        n = em.graph.tensors[op.outputs[0]].size
        (x, gx), = step.grad_inputs.items()
        if step.accumulate[x]:
            raise UnsupportedError(op.name, "a cast whose input gradient accumulates")
        return [em.call(em.kernel("tt_cast_grad_f32_to_f16"), t.grad(step.grad_out), n, t.loss_scale(),
                        t.grad(gx))]


UNIT = Cast()
