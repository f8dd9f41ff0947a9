"""pad: zero padding of height and width. Attribute: pad (top, bottom, left, right).
int8 pads with the output zero point (a real 0.0), as TFLite's PAD."""
from __future__ import annotations

import numpy as np

from .. import quant
from .base import OpUnit, expect_rank4, hwc_of, same_dtype
from .window import pad4, unpad4


def pad_s8(x, pad, value: int) -> np.ndarray:
    top, bottom, left, right = pad
    return np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=np.int8(value)).astype(np.int8)


class Pad(OpUnit):
    channelwise = True
    type = "pad"
    summary = "constant padding of height and width"
    attrs = {"pad": (0, 0, 0, 0)}
    tflite_ops = ("PAD",)
    tflite_inputs = 2
    keras_layers = ("ZeroPadding2D", "ZeroPadding1D")

    def from_keras(self, imp, layer, ins, outs, cfg):
        imp.check_channels_last(layer, cfg)
        if imp.is_sequence(ins[0]):      # ZeroPadding1D: (before, after) along T, the IR's W
            (top, bottom), (left, right) = (0, 0), cfg["padding"]
        else:
            (top, bottom), (left, right) = cfg["padding"]
        x = imp.input(layer, ins[0])
        imp.emit(layer, self.type, [x], outs[0], {"pad": (int(top), int(bottom), int(left), int(right))})

    def from_tflite(self, r, name, kind, op, ins, outs):
        from ..errors import UnsupportedError
        from ..ir import Op
        pads = r.const_values(name, ins[1], np.int64 if r.type_of(ins[1]) == "INT64" else np.int32)
        x = r.activation(name, ins[0])
        rank = len(r.shape(ins[0]))
        if rank == 3 and pads.shape == (3, 2):    # a (1, T, F) sequence, held as (1, 1, T, F)
            pads = np.insert(pads, 1, 0, axis=0)
        if len(r.tensors[x].shape) != 4 or pads.shape != (4, 2) or pads[0].any() or pads[3].any():
            raise UnsupportedError(name, f"PAD {pads.tolist()} (only height/width of NHWC)")
        y = r.activation(name, outs[0])
        return Op(name, self.type, [x], [y], {"pad": (int(pads[1, 0]), int(pads[1, 1]),
                                                       int(pads[2, 0]), int(pads[2, 1]))})

    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        same_dtype(g, op)

    def output_shape(self, g, op):
        _, h, w, c = g.tensors[op.inputs[0]].shape
        top, bottom, left, right = op.attrs["pad"]
        return (1, h + top + bottom, w + left + right, c)

    def params(self, g, op):
        return {"pad_value": quant.pad_value(g, op)}

    def ref_s8(self, g, op, args):
        return pad_s8(hwc_of(args[0], op), tuple(op.attrs["pad"]), self.params(g, op)["pad_value"])

    def ref_f32(self, g, op, args):
        return pad4(np.asarray(args[0], np.float32), tuple(op.attrs["pad"]))

    float16 = True          # pad_f16.c, pad_backward_f16.c (copies; accumulating: one rounding)

    def ref_f16(self, g, op, args):
        return pad4(np.asarray(args[0], np.float16), tuple(op.attrs["pad"]))

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        top, _, left, _ = op.attrs["pad"]
        args = [em.ptr(op.inputs[0]), em.dims(x), top, left]
        if self.is_int8(g, op):
            from ..cgen.cformat import CExpr
            value = CExpr(f"(int8_t){int(self.params(g, op)['pad_value'])}")
            return [em.call(em.kernel("tt_pad_s8"), *args, value, em.ptr(op.outputs[0]), em.dims(y))]
        sfx = "f16" if x.dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_pad_{sfx}"), *args, em.ptr(op.outputs[0]), em.dims(y))]

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        g = em.graph
        top, _, left, _ = op.attrs["pad"]
        sfx = "f16" if g.tensors[x].dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_pad_grad_input_{sfx}"), em.dims(g.tensors[x]), em.dims(g.tensors[op.outputs[0]]),
                        top, left, t.grad(step.grad_out), t.acc(step, x), t.grad(step.grad_inputs[x]))]

    def vjp(self, ctx, op, dy, step):
        return {x: np.ascontiguousarray(unpad4(dy, op.attrs["pad"])) for x in step.grad_inputs}, {}


UNIT = Pad()
