"""strided_slice: a strided window of an activation (Keras Cropping2D / Cropping1D, TFLite
STRIDED_SLICE on NHWC, (1, T, F) or (1, F) tensors). Input [x] -> y; attributes begin (h, w,
c) and stride (h, w, c): y[i, j, k] = x[begin_h + i*stride_h, begin_w + j*stride_w,
begin_c + k*stride_c] (strides may be negative), the output shape giving the counts. The
batch axis must keep its one element. The output is a copy, not an arena alias.

int8 and float32 copy values; LiteRT's STRIDED_SLICE copies bytes too (the quantization of
input and output is the converter's business; it makes them equal). Import resolves begin /
end / strides with their masks and the `offset` flag exactly as LiteRT's StartForAxis /
EndForAxis (negative indices, clamping, begin/end masks, axes left out at the end); the
ellipsis and new-axis masks and shrinking an axis are refused.

VJP: dy scattered into zeros at the sliced positions.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Op
from .base import OpUnit
from .resize import requantizing


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def slice_axis(size: int, begin: int, end: int, stride: int, begin_mask: bool, end_mask: bool,
               offset: bool) -> tuple[int, int]:
    """(start, count) along one axis: LiteRT's StartForAxis / EndForAxis, then the loop
    `for (i = start; stride > 0 ? i < stop : i > stop; i += stride)`."""
    start = begin + size if begin < 0 else begin
    start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
    if begin_mask:
        start = 0 if stride > 0 else size - 1
    stop = end + start if offset else end
    stop = stop + size if stop < 0 else stop
    stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
    if end_mask:
        stop = size if stride > 0 else -1
    span = stop - start
    if (span < 0) != (stride < 0) or span == 0:
        return start, 0
    return start, (span - (1 if stride > 0 else -1)) // stride + 1


def slice_indices(shape3, begin, stride, out3) -> tuple[np.ndarray, ...]:
    """Source index arrays along (h, w, c)."""
    return tuple(np.asarray(b + s * np.arange(n), np.int64) for b, s, n in zip(begin, stride, out3))


def hwc3(shape) -> tuple[int, int, int]:
    """(h, w, c) of an IR activation shape: NHWC or (1, features)."""
    return (shape[1], shape[2], shape[3]) if len(shape) == 4 else (1, 1, int(np.prod(shape)))


class StridedSlice(OpUnit):
    type = "strided_slice"
    summary = "strided window of an activation (Cropping2D / Cropping1D, STRIDED_SLICE)"
    attrs = {"begin": (0, 0, 0), "stride": (1, 1, 1)}
    tflite_ops = ("STRIDED_SLICE",)
    tflite_inputs = 4
    keras_layers = ("Cropping2D", "Cropping1D")

    # --- import ---------------------------------------------------------------------------------
    def from_tflite(self, r, name, kind, op, ins, outs):
        opts = r.options(op, r.s.StridedSliceOptions)
        masks = dict(begin=0, end=0, shrink=0, offset=False)
        if opts is not None:
            if opts.EllipsisMask() or opts.NewAxisMask():
                raise UnsupportedError(name, "STRIDED_SLICE with an ellipsis or new-axis mask")
            masks = dict(begin=opts.BeginMask(), end=opts.EndMask(), shrink=opts.ShrinkAxisMask(),
                         offset=bool(opts.Offset()))
        if masks["shrink"]:
            raise UnsupportedError(name, f"STRIDED_SLICE shrinking axes (mask {masks['shrink']})")
        x = r.activation(name, ins[0])
        shape = tuple(r.file_shapes.get(ins[0]) or r.shape(ins[0]))
        begin, end, strides = (list(int(v) for v in r.const_int(name, i).reshape(-1)) for i in ins[1:4])
        if not len(begin) == len(end) == len(strides) <= len(shape) or 0 in strides:
            raise TinyTrainError(f"layer {name!r}: STRIDED_SLICE of {shape} with begin {begin}, end {end}, "
                                 f"strides {strides}")
        n = len(begin)        # axes left out at the end are taken whole (LiteRT masks them)
        starts, counts, steps = [], [], []
        for axis, size in enumerate(shape):
            if axis < n:
                b, c = slice_axis(size, begin[axis], end[axis], strides[axis], bool(masks["begin"] >> axis & 1),
                                  bool(masks["end"] >> axis & 1), masks["offset"])
                s = strides[axis]
            else:
                b, c, s = 0, size, 1
            starts.append(b)
            counts.append(c)
            steps.append(s)
        if counts[0] != 1 or min(counts) < 1:
            raise UnsupportedError(name, f"STRIDED_SLICE of {shape} to {tuple(counts)} (batch 1, non-empty)")
        ir = [0, 0, 0], [1, 1, 1]            # (h, w, c) of the IR tensor
        for axis in range(1, len(shape)):
            k = {4: axis - 1, 3: axis, 2: 2}[len(shape)]
            ir[0][k], ir[1][k] = starts[axis], steps[axis]
        y = r.activation(name, outs[0], computed_shape=tuple(counts))
        return Op(name, self.type, [x], [y], {"begin": tuple(ir[0]), "stride": tuple(ir[1])})

    def from_keras(self, imp, layer, ins, outs, cfg):
        imp.check_channels_last(layer, cfg)
        x = imp.input(layer, ins[0])
        if imp.is_sequence(ins[0]):           # Cropping1D: (before, after) along T, the IR's W
            begin = (0, int(cfg["cropping"][0]), 0)
        else:
            (top, _), (left, _) = cfg["cropping"]
            begin = (int(top), int(left), 0)
        imp.emit(layer, self.type, [x], outs[0], {"begin": begin, "stride": (1, 1, 1)})

    # --- graph facts -------------------------------------------------------------------------------
    def check(self, g, op):
        super().check(g, op)
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if x.dtype != y.dtype or len(x.shape) not in (2, 4) or len(y.shape) != len(x.shape):
            raise UnsupportedError(op.name, f"{op.type} from {x.dtype} {x.shape} to {y.dtype} {y.shape}")
        begin, stride = tuple(self.attr(op, "begin")), tuple(self.attr(op, "stride"))
        if len(begin) != 3 or len(stride) != 3 or 0 in stride:
            raise UnsupportedError(op.name, f"{op.type} begin {begin}, stride {stride}")
        for size, b, s, n in zip(hwc3(x.shape), begin, stride, hwc3(y.shape)):
            last = b + s * (n - 1)
            if not (0 <= b < size and 0 <= last < size):
                raise UnsupportedError(op.name, f"{op.type} of {x.shape} to {y.shape} with begin {begin}, "
                                                f"stride {stride} reads outside the input")

    def indices(self, g, op):
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return slice_indices(hwc3(x.shape), self.attr(op, "begin"), self.attr(op, "stride"), hwc3(y.shape))

    def backward_unsupported(self, g, op):
        return requantizing(g, op)

    # --- references ------------------------------------------------------------------------------------
    def run(self, g, op, args):
        x = g.tensors[op.inputs[0]]
        v = np.asarray(args[0]).reshape(hwc3(x.shape))
        return v[np.ix_(*self.indices(g, op))].reshape(g.tensors[op.outputs[0]].shape)

    def ref_s8(self, g, op, args):
        return self.run(g, op, args)

    def ref_f32(self, g, op, args):
        return self.run(g, op, args)

    float16 = True      # strided_slice_f16.c (a copy), strided_slice_backward_f16.c (one rounding)

    def ref_f16(self, g, op, args):
        return self.run(g, op, args)

    # --- C -----------------------------------------------------------------------------------------------
    def _params(self, em, op):
        (bh, bw, bc), (sh, sw, sc) = self.attr(op, "begin"), self.attr(op, "stride")
        return em.struct("tt_slice_params", f"slice_{op.name}", begin_h=bh, begin_w=bw, begin_c=bc,
                         stride_h=sh, stride_w=sw, stride_c=sc)

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        fn = em.kernel(f"tt_strided_slice_{ {'int8': 's8', 'float16': 'f16'}.get(x.dtype, 'f32') }")
        return [em.call(fn, em.ptr(op.inputs[0]), em.dims(x), self._params(em, op), em.ptr(op.outputs[0]),
                        em.dims(y))]

    # --- training --------------------------------------------------------------------------------------
    def vjp(self, ctx, op, dy, step):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return {}, {}
        g = ctx.graph
        xt, yt = g.tensors[x], g.tensors[op.outputs[0]]
        dx = np.zeros(hwc3(xt.shape), np.float32)
        dx[np.ix_(*self.indices(g, op))] = np.asarray(dy, np.float32).reshape(hwc3(yt.shape))
        return {x: dx.reshape(xt.shape)}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        g = em.graph
        sfx = "f16" if g.tensors[x].dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_strided_slice_grad_input_{sfx}"), t.grad(step.grad_out),
                        em.dims(g.tensors[op.outputs[0]]), self._params(em, op), t.acc(step, x),
                        t.grad(step.grad_inputs[x]), em.dims(g.tensors[x]))]


UNIT = StridedSlice()
