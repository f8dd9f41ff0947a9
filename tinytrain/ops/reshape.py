"""reshape: the same values in another shape (the output tensor's). In the arena its output
is a view of the input's bytes (the planners alias them), so it usually emits no code."""
from __future__ import annotations

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Op
from .base import OpUnit, same_dtype


class Reshape(OpUnit):
    type = "reshape"
    summary = "same values, another shape (no code: an arena alias)"
    aliases_input = True
    float16 = True
    tflite_ops = ("RESHAPE", "EXPAND_DIMS", "SQUEEZE")
    keras_layers = ("Flatten", "Reshape")

    def from_keras(self, imp, layer, ins, outs, cfg):
        x = imp.input(layer, ins[0])
        shape = imp.shape(layer, outs[0])
        if shape == imp.tensors[x].shape:
            imp.alias(ins[0], outs[0])
            return
        imp.emit(layer, self.type, [x], outs[0], shape=shape)

    def from_tflite(self, r, name, kind, op, ins, outs):
        """RESHAPE / EXPAND_DIMS / SQUEEZE. Where the IR shape does not change (a (1, T, F)
        sequence made (1, 1, T, F) for a Conv1D and back) or has no IR form (the rank-5 steps
        of a nearest-neighbour upsampling), the output is the input's IR tensor: no op."""
        x = r.activation(name, ins[0], view_ok=True)
        xt = r.tensors[x]
        if kind == "RESHAPE":
            target = self._tflite_target(r, name, op, ins, xt)
        else:      # from the input's file shape (a dynamic-batch file leaves the output's to run time)
            target = self._squeeze_or_expand(r, name, kind, op, ins)
        file_shape = r._static_shape(name, outs[0], target)
        if int(np.prod(file_shape)) != xt.size:
            raise TinyTrainError(f"layer {name!r}: reshape of {xt.shape} to {file_shape}")
        ir = r.ir_shape(name, outs[0], target)
        if r.same_quant(ins[0], outs[0]) and (ir is None or ir == xt.shape):
            r.alias(outs[0], x, file_shape, view=ir is None)
            return []
        y = r.activation(name, outs[0], computed_shape=target)
        return Op(name, self.type, [x], [y], {})

    def _squeeze_or_expand(self, r, name, kind, op, ins) -> tuple[int, ...]:
        shape = list(r.file_shapes[ins[0]])
        if kind == "EXPAND_DIMS":
            axis = int(r.const_int(name, ins[1]).reshape(-1)[0])
            axis = axis + len(shape) + 1 if axis < 0 else axis
            if not 0 <= axis <= len(shape):
                raise TinyTrainError(f"layer {name!r}: EXPAND_DIMS of {tuple(shape)} at axis {axis}")
            return tuple(shape[:axis] + [1] + shape[axis:])
        opts = r.options(op, r.s.SqueezeOptions)
        dims = [int(d) for d in opts.SqueezeDimsAsNumpy()] if opts is not None and opts.SqueezeDimsLength() else []
        dims = {d + len(shape) if d < 0 else d for d in dims} or {i for i, d in enumerate(shape) if d == 1}
        if any(not 0 <= d < len(shape) or shape[d] != 1 for d in dims):
            raise TinyTrainError(f"layer {name!r}: SQUEEZE of {tuple(shape)} over {sorted(dims)}")
        return tuple(d for i, d in enumerate(shape) if i not in dims)

    def _tflite_target(self, r, name, op, ins, xt) -> tuple[int, ...] | None:
        """The output shape a RESHAPE asks for (its -1 resolved): its shape input must be a
        constant or folded shape arithmetic (frontends/shape_fold.py); a shape known only at
        run time is refused."""
        if len(ins) >= 2 and ins[1] >= 0:
            if not r.is_constant(ins[1]):
                raise UnsupportedError(name, f"RESHAPE to a shape computed at run time from "
                                             f"{r.raw_name(ins[1])!r}")
            target = [int(d) for d in r.const_int(name, ins[1]).reshape(-1)]
        else:
            opts = r.options(op, r.s.ReshapeOptions)
            if opts is None or not opts.NewShapeLength():
                return None
            target = [int(d) for d in opts.NewShapeAsNumpy()]
        if target.count(-1) == 1:
            known = int(np.prod([d for d in target if d != -1]))
            if known > 0 and xt.size % known == 0:
                target[target.index(-1)] = xt.size // known
        if any(d < 0 for d in target) or int(np.prod(target)) != xt.size:
            raise TinyTrainError(f"layer {name!r}: reshape of {xt.shape} ({xt.size} values) to {target}")
        return tuple(target)

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
