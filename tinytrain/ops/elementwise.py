"""What the binary elementwise ops share (add, sub, mul, maximum, minimum, prelu): two
operands broadcast against each other, either of which may be a constant.

Constants: an operand with data (a constant tensor of the IR, as weights are) is a flash
array: the emitter's `em.ptr` gives its array, the memory plan leaves it out of the arena,
the training program never asks a gradient of it. int8 constants carry their own per-tensor
scale and zero point (the converter quantizes them asymmetrically), float constants are
float32. Shapes are anything that broadcasts to the output: a scalar (), a per-channel
vector (C,), (1, 1, 1, C), ...

Broadcasting follows TFLite (and numpy): shapes right-aligned, a 1 stretches. In C an op
walks its output as (h, w, c) (batch 1) and finds an operand's element of output position
(y, x, ch) at y * sh + x * sw + ch * sc, the stride being 0 along an axis the operand
broadcasts: the `tt_bcast` struct (firmware/include/tt_types.h). LiteRT runs equal shapes
through a flat elementwise loop and different ones through its "BroadcastXxx6DSlow" index
walk; the element arithmetic is the same on both, so the units emit a flat kernel for equal
shapes and a tt_bcast kernel otherwise, and both are checked against LiteRT.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ACT_CODES, Graph, Op
from . import f16
from .base import OpUnit
from .window import activate_f32


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape two shapes broadcast to (TFLite / numpy rules), or None."""
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)


def out_hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """An output shape as the (h, w, c) the kernels walk (batch 1; (1, F) is 1 x 1 x F)."""
    s = (1,) * (4 - len(shape)) + tuple(shape)
    return s[1], s[2], s[3]


def operand_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(sh, sw, sc): element strides of an operand of `shape` along the output's h, w, c;
    0 where it broadcasts."""
    s = (1,) * (4 - len(shape)) + tuple(shape)
    o = (1,) * (4 - len(out_shape)) + tuple(out_shape)
    strides, step = [0, 0, 0], 1
    for axis in (3, 2, 1):
        strides[axis - 1] = step if s[axis] == o[axis] and s[axis] != 1 else 0
        step *= s[axis]
    return tuple(strides)


def bcast_fields(a_shape, b_shape, out_shape) -> dict:
    """Fields of a tt_bcast: the output walked as (h, w, c), strides of a and of b."""
    h, w, c = out_hwc(out_shape)
    a_sh, a_sw, a_sc = operand_strides(a_shape, out_shape)
    b_sh, b_sw, b_sc = operand_strides(b_shape, out_shape)
    return dict(h=h, w=w, c=c, a_sh=a_sh, a_sw=a_sw, a_sc=a_sc, b_sh=b_sh, b_sw=b_sw, b_sc=b_sc)


def reduce_to(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of an operand of `shape` broadcast to grad.shape: the sum over the axes it
    was stretched along (float32, summed in float64)."""
    g = np.asarray(grad, np.float64)
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead > 0 else g
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape).astype(np.float32)


class BinaryOp(OpUnit):
    """Two operands [a, b] (one may be a constant) -> an output of their broadcast shape.
    Subclasses give the element arithmetic (`s8`, `f32`) and their kernels' names."""
    channelwise = True
    tflite_inputs = 2
    keras_inputs = 2
    fused_activation = True           # a fused relu/relu6 (TFLite's ADD/SUB/MUL options)
    s8_variants = None                # variants of the equal-shape int8 kernel (em.kernel's allowed)
    # the float16 kernels' Helium forms (float16 units: they store the portable kernels' bits)
    f16_variants = {"mve": True}      # of the equal-shape kernel
    f16_bcast_variants = None         # of the broadcasting one

    # --- graph facts -----------------------------------------------------------------------
    def check(self, g, op):
        super().check(g, op)
        if len(op.inputs) != 2:
            raise UnsupportedError(op.name, f"{op.type} with {len(op.inputs)} inputs (2 expected)")
        a, b = (g.tensors[t] for t in op.inputs)
        y = g.tensors[op.outputs[0]]
        if a.is_const and b.is_const:
            raise UnsupportedError(op.name, f"{op.type} of two constants (fold it before import)")
        for t in (a, b):
            if t.dtype != y.dtype:
                raise UnsupportedError(op.name, f"{op.type} mixing dtypes {t.dtype} ({t.name!r}) and {y.dtype}")
            if t.dtype == "int8" and (t.quant is None or t.quant.per_channel):
                raise UnsupportedError(op.name, f"{op.type} operand {t.name!r} without per-tensor quantization")
        if broadcast_shape(a.shape, b.shape) != y.shape:
            raise UnsupportedError(op.name, f"{op.type} of shapes {a.shape} and {b.shape} to {y.shape} "
                                            "(not a broadcast)")
        if len(y.shape) > 4 or (len(y.shape) == 4 and y.shape[0] != 1) or (len(y.shape) in (2, 3) and y.shape[0] != 1):
            raise UnsupportedError(op.name, f"{op.type} output of shape {y.shape} (batch 1, rank <= 4)")
        for t in (a, b):
            if len(t.shape) == len(y.shape) == 4 and t.shape[0] != 1:
                raise UnsupportedError(op.name, f"{op.type} operand {t.name!r} of batch {t.shape[0]}")

    def broadcasts(self, g: Graph, op: Op) -> bool:
        """The operands' shapes differ (LiteRT's broadcast branch)."""
        a, b = (g.tensors[t] for t in op.inputs)
        y = g.tensors[op.outputs[0]]
        return not (a.size == b.size == y.size)

    def channel_params(self, g, op):
        """Constant operands with one value per output channel follow a channel permutation."""
        c = g.tensors[op.outputs[0]].shape[-1]
        return {t: len(g.tensors[t].shape) - 1 for t in op.inputs
                if g.tensors[t].is_const and c > 1 and g.tensors[t].shape and g.tensors[t].shape[-1] == c}

    def activation(self, op):
        return op.attrs.get("activation", "none")

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])

    # --- references ----------------------------------------------------------------------------
    def operands(self, g, op, args) -> tuple[np.ndarray, np.ndarray]:
        shape = g.tensors[op.outputs[0]].shape
        return tuple(np.broadcast_to(np.asarray(v).reshape(g.tensors[t].shape), shape)
                     for v, t in zip(args, op.inputs))

    def s8(self, a: np.ndarray, b: np.ndarray, p: dict) -> np.ndarray:
        raise NotImplementedError

    def f32(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def ref_s8(self, g, op, args):
        a, b = self.operands(g, op, args)
        return self.s8(a, b, self.params(g, op))

    def ref_f32(self, g, op, args):
        a, b = self.operands(g, op, args)
        y = self.f32(np.asarray(a, np.float32), np.asarray(b, np.float32)).astype(np.float32)
        return activate_f32(y, self.activation(op)) if self.fused_activation else y

    # --- C forward ---------------------------------------------------------------------------
    def params_struct(self, em, op):
        """&params of the int8 kernel (the struct of the op's type)."""
        raise NotImplementedError

    def bcast(self, em, op, x: str | None = None):
        """&tt_bcast of the op's operands (of x and the other operand, x first, if given)."""
        g = em.graph
        a, b = op.inputs if x in (None, op.inputs[0]) else op.inputs[::-1]
        f = bcast_fields(g.tensors[a].shape, g.tensors[b].shape, g.tensors[op.outputs[0]].shape)
        return em.struct("tt_bcast", f"bc_{f['h']}x{f['w']}x{f['c']}", **f)

    def ref_f16(self, g, op, args):
        """tt_<op>_f16 / tt_<op>_bcast_f16: self.f32 of two halves (their exact sum, difference
        or product rounded once to float32), then the activation and the rounding to half."""
        a, b = self.operands(g, op, args)
        return f16.binary(a, b, self.f32, self.activation(op))

    def emit(self, em, op):
        g = em.graph
        y = g.tensors[op.outputs[0]]
        a, b, out = em.ptr(op.inputs[0]), em.ptr(op.inputs[1]), em.ptr(op.outputs[0])
        t = "s8" if self.is_int8(g, op) else "f16" if y.dtype == "float16" else "f32"
        extra = [self.params_struct(em, op)] if t == "s8" else (
            [ACT_CODES[self.activation(op)]] if self.fused_activation else [])
        if self.broadcasts(g, op):
            allowed = self.f16_bcast_variants if t == "f16" else None
            return [em.call(em.kernel(f"tt_{self.type}_bcast_{t}", allowed), a, b, self.bcast(em, op), *extra, out)]
        allowed = {"s8": self.s8_variants, "f16": self.f16_variants}.get(t)
        return [em.call(em.kernel(f"tt_{self.type}_{t}", allowed), a, b, y.size, *extra, out)]

    # --- import ----------------------------------------------------------------------------------
    def output_shape(self, g, op):
        return broadcast_shape(*(g.tensors[t].shape for t in op.inputs[:2]))

    def from_tflite(self, r, name, kind, op, ins, outs):
        """Two operands, each an activation or a constant; the output of their broadcast shape."""
        y = r.activation(name, outs[0])
        yt = r.tensors[y]
        operands = [r.operand(name, i, yt.dtype) for i in ins[:2]]
        attrs = {}
        if self.fused_activation:
            opts_cls = getattr(r.s, {"add": "AddOptions", "sub": "SubOptions", "mul": "MulOptions"}[self.type])
            attrs["activation"] = r.fused(name, r.options(op, opts_cls))
        shapes = [r.tensors[t].shape for t in operands]
        if y not in r.unresolved and broadcast_shape(*shapes) != yt.shape:
            raise UnsupportedError(name, f"{kind} of shapes {shapes[0]} and {shapes[1]} to {yt.shape}")
        return Op(name, self.type, operands, [y], attrs)

    def from_keras(self, imp, layer, ins, outs, cfg):
        """A Keras merge layer (Add, Subtract, Multiply, Maximum, Minimum): more than two
        inputs become a chain of binary ops, left to right."""
        xs = [imp.input(layer, kt) for kt in ins]
        if len(xs) < 2 or (self.type == "sub" and len(xs) != 2):
            raise UnsupportedError(layer.name, f"{type(layer).__name__} of {len(xs)} inputs")
        acc = xs[0]
        for k, x in enumerate(xs[1:]):
            last = k == len(xs) - 2
            shape = broadcast_shape(imp.tensors[acc].shape, imp.tensors[x].shape)
            if shape is None:
                raise UnsupportedError(layer.name, f"{type(layer).__name__} of shapes "
                                                   f"{imp.tensors[acc].shape} and {imp.tensors[x].shape}")
            attrs = {"activation": "none"} if self.fused_activation else {}
            made = imp.emit(layer, self.type, [acc, x], outs[0] if last else None, attrs,
                            shape=None if last else shape, suffix="" if last else f"_{k}")
            acc = made.outputs[0]

    def from_keras_op(self, imp, operation, operands, outs):
        """A Keras operation on tensors and constants (`x + 3.0`, `keras.ops.maximum(x, 0.5)`):
        operands are IR tensor names or numpy constants."""
        if len(operands) != 2:
            raise UnsupportedError(operation.name, f"{type(operation).__name__} of {len(operands)} operands")
        names = [imp.operand(operation, v) for v in operands]
        attrs = {"activation": "none"} if self.fused_activation else {}
        imp.emit(operation, self.type, names, outs[0], attrs)

    # --- training --------------------------------------------------------------------------------
    def act_inputs(self, g, op) -> list[str]:
        return [t for t in op.inputs if not g.tensors[t].is_const]
