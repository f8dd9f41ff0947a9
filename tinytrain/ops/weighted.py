"""What conv2d, depthwise_conv2d and fully_connected share: inputs [x, weight, bias], an int8
requantization per output channel, and trainable parameters.

A subclass gives its layout (`weight_out_axis`, `weight_in_axis`), its references, its
forward emission and `backward` (numpy dx, dW, db); the training facts and the VJP that
selects trained channels live here once.
"""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from .base import OpUnit, same_dtype


class WeightedOp(OpUnit):
    weighted = True
    weight_out_axis = 0
    weight_in_axis = -1

    def check(self, g, op):
        super().check(g, op)
        if len(op.inputs) != 3:
            raise UnsupportedError(op.name, f"{op.type} with {len(op.inputs)} inputs (x, weight, bias)")
        same_dtype(g, op)
        w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
        if not (w.is_const and b.is_const):
            raise UnsupportedError(op.name, f"{op.type} with non-constant weight or bias")
        x = g.tensors[op.inputs[0]]
        want_b = "int32" if x.dtype == "int8" else "float32"
        if w.dtype != x.dtype or b.dtype != want_b:
            raise UnsupportedError(op.name, f"{op.type} with {w.dtype} weights and {b.dtype} bias "
                                            f"on {x.dtype} activations")
        if b.shape != (self.out_channels(g, op),):
            raise UnsupportedError(op.name, f"bias of shape {b.shape} for {self.out_channels(g, op)} channels")

    def out_channels(self, g, op) -> int:
        return g.tensors[op.inputs[1]].shape[self.weight_out_axis]

    def in_channels(self, g, op) -> int:
        """Input channels of the weight (the axis a partial update trains a prefix of)."""
        return g.tensors[op.inputs[1]].shape[self.weight_in_axis]

    def params(self, g, op):
        return quant.conv_requant(g, op)

    def update_scratch(self, g, op, k: int) -> int:
        """Floats of scratch the fused weight update needs: one output channel's weight
        gradient over k trained input channels (0: none)."""
        return 0

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])

    def backward(self, x, w, dy, op, need_dx: bool, k: int):
        """(dx or None, dW over input channels [0, k), db) on real (float32) values."""
        raise NotImplementedError

    def vjp(self, ctx, op, dy, step):
        """Input gradient and the trained parameters' gradients of one backward step.

        Returns ({activation: dx}, {param: grad}); a partial update's weight gradient covers
        the trained input channels only (the first k, or those of the channel index)."""
        g = ctx.graph
        need = list(step.grad_inputs)
        index = step.channel_index()
        full = self.in_channels(g, op)
        k = step.trained_in_channels(full) if step.computes_weight_grad else 1
        if index is not None:        # listed channels: all gradients, then keep those
            k = full
        x = ctx.real(op.inputs[0])
        w = ctx.real(op.inputs[1])
        need_dx = op.inputs[0] in need
        dx, dw, db = self.backward(x, w, dy, op, need_dx, k)
        grads = {}
        if step.computes_weight_grad:
            grads[op.inputs[1]] = dw[..., index] if index is not None else dw
        if step.computes_bias_grad:
            grads[op.inputs[2]] = db
        return ({op.inputs[0]: dx} if need_dx else {}), grads

    # --- C backward ---------------------------------------------------------------------------
    def emit_backward(self, em, op, b, t) -> list[str]:
        """Input gradient with the OLD weights, then the in-place weight update (one output
        channel at a time, through scratch), then the bias update (`t`: the training
        emission context, tinytrain.training.emit)."""
        gy = t.grad(b.grad_out)
        lines = []
        x = op.inputs[0]
        if x in b.grad_inputs:
            lines += self.emit_grad_input(em, op, t, gy, t.grad(b.grad_inputs[x]), t.acc(b, x))
        if b.computes_weight_grad:
            lines += self.emit_weight_update(em, op, b, t, gy)
        if b.computes_bias_grad:
            lines.append(t.bias_update(op, gy))
        return lines

    def emit_grad_input(self, em, op, t, gy, gx, acc) -> list[str]:
        raise NotImplementedError

    def emit_weight_update(self, em, op, b, t, gy) -> list[str]:
        raise NotImplementedError
