"""concatenation: the inputs side by side along one axis (attribute `axis`, of the output's
rank, non-negative), any number of inputs (a constant input is a flash array).

int8: LiteRT's reference CONCATENATION copies bytes (reference_ops::Concatenation): its
Prepare refuses int8 inputs whose scale or zero point differ from the output's ("no
re-scaling needed for Int8 quantized kernel"; only uint8 rescales), and so does this unit;
the converter gives all of them one quantization. A fused activation is refused (LiteRT
ensures none).

C: one copy per input, `outer` blocks of `in_block` elements into blocks of `out_block`
elements at element `offset` (outer: the product of the dimensions before the axis)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Op
from .base import OpUnit


def concat_geometry(shapes: list[tuple[int, ...]], axis: int) -> tuple[int, list[int], int, list[int]]:
    """(outer, in_block per input, out_block, element offset per input)."""
    outer = int(np.prod(shapes[0][:axis], dtype=np.int64))
    blocks = [int(np.prod(s[axis:], dtype=np.int64)) for s in shapes]
    offsets = [int(v) for v in np.cumsum([0] + blocks[:-1])]
    return outer, blocks, int(sum(blocks)), offsets


class Concatenation(OpUnit):
    type = "concatenation"
    summary = "inputs side by side along an axis (channels, ...)"
    attrs = {"axis": -1}
    tflite_ops = ("CONCATENATION",)
    tflite_inputs = 1
    keras_layers = ("Concatenate",)
    keras_inputs = None            # any number

    def axis(self, g, op) -> int:
        rank = len(g.tensors[op.outputs[0]].shape)
        return int(self.attr(op, "axis")) % rank

    def check(self, g, op):
        super().check(g, op)
        y = g.tensors[op.outputs[0]]
        rank = len(y.shape)
        a = int(self.attr(op, "axis"))
        if not -rank <= a < rank:
            raise UnsupportedError(op.name, f"concatenation axis {a} of a rank-{rank} output")
        axis = a % rank
        xs = [g.tensors[t] for t in op.inputs]
        if not xs:
            raise UnsupportedError(op.name, "concatenation of no input")
        for x in xs:
            if x.dtype != y.dtype:
                raise UnsupportedError(op.name, f"concatenation mixing dtypes {x.dtype} and {y.dtype}")
            if len(x.shape) != rank or any(d != e for i, (d, e) in enumerate(zip(x.shape, y.shape)) if i != axis):
                raise UnsupportedError(op.name, f"concatenation of {x.shape} into {y.shape} along axis {axis}")
        if sum(x.shape[axis] for x in xs) != y.shape[axis]:
            raise UnsupportedError(op.name, f"concatenation of {[x.shape for x in xs]} into {y.shape}")
        if y.dtype == "int8":
            for x in xs:
                if x.quant is None or x.quant.per_channel or (float(x.scale), x.zero_point) != (float(y.scale), y.zero_point):
                    raise UnsupportedError(op.name, f"int8 concatenation of {x.name!r} quantized differently from "
                                                    "the output (LiteRT's int8 kernel refuses rescaling too)")

    def geometry(self, g, op):
        return concat_geometry([g.tensors[t].shape for t in op.inputs], self.axis(g, op))

    def run(self, g, op, args):
        shapes = [g.tensors[t].shape for t in op.inputs]
        out = np.concatenate([np.asarray(v).reshape(s) for v, s in zip(args, shapes)], axis=self.axis(g, op))
        return out.astype(g.tensors[op.outputs[0]].dtype)

    def from_tflite(self, r, name, kind, op, ins, outs):
        opts = r.options(op, r.s.ConcatenationOptions)
        if r.fused(name, opts) != "none":
            raise UnsupportedError(name, "CONCATENATION with a fused activation")
        y = r.activation(name, outs[0])
        xs = [r.operand(name, i, r.tensors[y].dtype) for i in ins]
        return Op(name, self.type, xs, [y], {"axis": int(opts.Axis()) if opts is not None else 0})

    def from_keras(self, imp, layer, ins, outs, cfg):
        xs = [imp.input(layer, kt) for kt in ins]
        imp.emit(layer, self.type, xs, outs[0], {"axis": int(cfg.get("axis", -1))})

    float16 = True          # concatenation_f16.c, concatenation_backward_f16.c (copies; accumulating: one rounding)

    def ref_f16(self, g, op, args):
        return self.run(g, op, args)

    def emit(self, em, op):
        g = em.graph
        outer, blocks, out_block, offsets = self.geometry(g, op)
        t = {"int8": "s8", "float16": "f16"}.get(g.tensors[op.outputs[0]].dtype, "f32")
        y = em.ptr(op.outputs[0])
        return [em.call(em.kernel(f"tt_concatenation_{t}"), em.ptr(x), outer, block, out_block, off, y)
                for x, block, off in zip(op.inputs, blocks, offsets)]

    # --- training: each input's gradient is its slice of the output's ------------------------------
    def backward_unsupported(self, g, op):
        if g.tensors[op.outputs[0]].dtype == "float16" and len(set(op.inputs)) < len(op.inputs):
            # two slices of one gradient would round twice in C, once in the simulation
            return "backward of a float16 concatenation holding one tensor twice"
        return None

    def vjp(self, ctx, op, dy, step):
        g = ctx.graph
        axis = self.axis(g, op)
        dy = np.asarray(dy, np.float32).reshape(g.tensors[op.outputs[0]].shape)
        grads, start = {}, 0
        for x in op.inputs:
            size = g.tensors[x].shape[axis]
            if x in step.grad_inputs:
                d = np.take(dy, np.arange(start, start + size), axis=axis)
                grads[x] = grads[x] + d if x in grads else d
            start += size
        return grads, {}

    def emit_backward(self, em, op, step, t):
        g = em.graph
        outer, blocks, out_block, offsets = self.geometry(g, op)
        lines, done = [], set()
        for x, block, off in zip(op.inputs, blocks, offsets):
            if x not in step.grad_inputs:
                continue
            acc = 1 if x in done else t.acc(step, x)
            sfx = "f16" if g.tensors[x].dtype == "float16" else "f32"
            lines.append(em.call(em.kernel(f"tt_concatenation_grad_input_{sfx}"), t.grad(step.grad_out), outer, block,
                                 out_block, off, acc, t.grad(step.grad_inputs[x])))
            done.add(x)
        return lines


UNIT = Concatenation()
