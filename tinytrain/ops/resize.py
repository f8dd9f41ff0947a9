"""resize_nearest and resize_bilinear: spatial resizing of NHWC (Keras UpSampling2D /
UpSampling1D / Resizing; TFLite RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, and the
RESHAPE + TILE pairs the converter emits for a nearest-neighbour UpSampling2D).
Input [x (1,H,W,C)] -> (1,OH,OW,C); attributes align_corners, half_pixel_centers (TFLite's
options) and, for nearest, `exact`: an integer repeat (out index * in // out), what TILE
and UpSampling compute.

Where each output row/column reads from is a per-axis table computed here once (numpy, in
float32 / int32 arithmetic as LiteRT computes it per element) and emitted as constant arrays:
the C kernels and the numpy references use the same numbers.

int8: input and output share the quantization (as the converter makes them; LiteRT ignores
it either way); nearest copies bytes. Bilinear follows LiteRT's reference ResizeBilinearInteger (what BUILTIN_REF runs for
int8): 10-bit fixed-point source coordinates, scale ((in << 10) + out / 2) / out (align_corners:
of in - 1 and out - 1), half-pixel offset scale / 2 - 512, bounds by truncating division, the
four products summed in 20 bits and rounded half away from zero (the build's double-rounding
form), no clamp. float32: LiteRT's reference ResizeBilinear operation for operation.

Training: the VJPs scatter dy back through the same tables (nearest: to the source pixel;
bilinear: by the interpolation weights, the int8 path's w / 1024 for int8 graphs).
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Op
from . import f16
from .base import OpUnit, expect_rank4, hwc_of, same_dtype

F32 = np.float32


def nearest_index(in_size: int, out_size: int, align_corners: bool, half_pixel: bool,
                  exact: bool = False) -> np.ndarray:
    """Source index of each output index: LiteRT's GetNearestNeighbor (float32 arithmetic),
    or the integer repeat (i * in // out) of `exact`."""
    i = np.arange(out_size)
    if exact:
        return (i * in_size // out_size).astype(np.int32)
    if align_corners and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    else:
        scale = F32(in_size) / F32(out_size)
    v = (i.astype(F32) + F32(0.5 if half_pixel else 0.0)) * scale
    if align_corners:   # TfLiteRound: half away from zero (v >= 0 here)
        idx = np.floor(v) + (v - np.floor(v) >= F32(0.5))
    else:
        idx = np.floor(v)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    if half_pixel:
        idx = np.maximum(idx, 0)
    return idx.astype(np.int32)


def _trunc_div(a, b: int) -> np.ndarray:
    """C integer division (toward zero)."""
    a = np.asarray(a, np.int64)
    return np.sign(a) * (np.abs(a) // b)


def bilinear_axis_s8(in_size: int, out_size: int, align_corners: bool, half_pixel: bool):
    """(lo, hi, frac) int32 per output index: LiteRT's ComputeInterpolationValuesInteger with
    its 10-bit scale; frac = source coordinate - 1024 * lo (negative left of the first
    pixel centre with half_pixel_centers)."""
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = ((1 << 10) * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64) * scale
    if half_pixel:
        v = v + scale // 2 - (1 << 9)
    lo = np.maximum(_trunc_div(v, 1 << 10), 0)
    hi = np.minimum(_trunc_div(v + (1 << 10) - 1, 1 << 10), in_size - 1)
    return lo.astype(np.int32), hi.astype(np.int32), (v - (1 << 10) * lo).astype(np.int32)


def bilinear_axis_f32(in_size: int, out_size: int, align_corners: bool, half_pixel: bool):
    """(lo, hi, frac) per output index: LiteRT's float ComputeInterpolationValues; frac is
    the float32 (source - lo) each element's weights start from."""
    scale = F32(in_size) / F32(out_size)
    if align_corners and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    i = np.arange(out_size).astype(F32)
    v = (i + F32(0.5)) * scale - F32(0.5) if half_pixel else i * scale
    lo = np.maximum(np.floor(v).astype(np.int64), 0)
    hi = np.minimum(np.ceil(v).astype(np.int64), in_size - 1)
    return lo.astype(np.int32), hi.astype(np.int32), (v - lo.astype(F32)).astype(F32)


def resize_nearest(x, iy, ix) -> np.ndarray:
    """x (H, W, C) gathered at rows iy and columns ix (any dtype)."""
    return x[np.asarray(iy)][:, np.asarray(ix)]


def resize_bilinear_s8(x, ytab, xtab) -> np.ndarray:
    """LiteRT's ResizeBilinearInteger on x (H, W, C) int8 with the axis tables of bilinear_axis_s8."""
    (y0, y1, fy), (x0, x1, fx) = ytab, xtab
    v = np.asarray(x, np.int64)
    fy, fx = np.asarray(fy, np.int64)[:, None, None], np.asarray(fx, np.int64)[None, :, None]
    one = 1 << 10
    acc = (v[y0][:, x0] * (one - fy) * (one - fx) + v[y1][:, x0] * fy * (one - fx)
           + v[y0][:, x1] * (one - fy) * fx + v[y1][:, x1] * fy * fx)
    acc = acc + np.where(acc > 0, 1 << 19, -(1 << 19))
    return _trunc_div(acc, 1 << 20).astype(np.int8)


def resize_bilinear_f32(x, ytab, xtab) -> np.ndarray:
    """LiteRT's float ResizeBilinear, in float32 and its order of operations."""
    (y0, y1, fy), (x0, x1, fx) = ytab, xtab
    v = np.asarray(x, F32)
    dy, dx = np.asarray(fy, F32)[:, None, None], np.asarray(fx, F32)[None, :, None]
    one = F32(1)
    return (v[y0][:, x0] * (one - dy) * (one - dx) + v[y1][:, x0] * dy * (one - dx)
            + v[y0][:, x1] * (one - dy) * dx + v[y1][:, x1] * dy * dx).astype(F32)


def resize_nearest_grad(dy, iy, ix, in_hw) -> np.ndarray:
    """dx (1, H, W, C): each output gradient added into the pixel it copied."""
    dx = np.zeros((in_hw[0], in_hw[1], dy.shape[-1]), np.float64)
    np.add.at(dx, (np.asarray(iy)[:, None], np.asarray(ix)[None, :]), dy[0].astype(np.float64))
    return dx[None].astype(F32)


def resize_bilinear_grad(dy, ytab, xtab, in_hw) -> np.ndarray:
    """dx (1, H, W, C): each output gradient spread over its four sources by the
    interpolation weights (ytab / xtab: (lo, hi, frac) with frac as a float fraction)."""
    (y0, y1, fy), (x0, x1, fx) = ytab, xtab
    g = dy[0].astype(np.float64)
    wy, wx = np.asarray(fy, np.float64)[:, None, None], np.asarray(fx, np.float64)[None, :, None]
    dx = np.zeros((in_hw[0], in_hw[1], dy.shape[-1]), np.float64)
    for rows, cols, w in ((y0, x0, (1 - wy) * (1 - wx)), (y1, x0, wy * (1 - wx)),
                          (y0, x1, (1 - wy) * wx), (y1, x1, wy * wx)):
        np.add.at(dx, (np.asarray(rows)[:, None], np.asarray(cols)[None, :]), g * w)
    return dx[None].astype(F32)


def source_ranges(n_in: int, *tables) -> np.ndarray:
    """Per input index i, the outputs [start, end) whose source index (in any of `tables`) is i:
    int32 (n_in starts, then n_in ends); (0, 0) where no output reads i. The half-precision
    gradient kernels gather over these ranges (testing each source index)."""
    src = np.stack([np.asarray(t) for t in tables])
    out = np.zeros(2 * n_in, np.int32)
    for i in range(n_in):
        hits = np.nonzero((src == i).any(axis=0))[0]
        if hits.size:
            out[i], out[n_in + i] = hits[0], hits[-1] + 1
    return out


def requantizing(g, op) -> str | None:
    """int8 data movement (resize, slice) copies bytes, as LiteRT does: with input and output
    quantized differently that rescales real values, which the VJPs do not model."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.dtype == "int8" and (x.scale != y.scale or x.zero_point != y.zero_point):
        return f"backward of an int8 {op.type} whose input and output quantization differ"
    return None


class _Resize(OpUnit):
    channelwise = True
    attrs = {"align_corners": False, "half_pixel_centers": False}
    tflite_inputs = 2

    # --- import -----------------------------------------------------------------------------
    def from_tflite(self, r, name, kind, op, ins, outs):
        cls = r.s.ResizeBilinearOptions if kind == "RESIZE_BILINEAR" else r.s.ResizeNearestNeighborOptions
        opts = r.options(op, cls)
        align = bool(opts.AlignCorners()) if opts is not None else False
        half = bool(opts.HalfPixelCenters()) if opts is not None else False
        x = r.activation(name, ins[0])
        xt = r.tensors[x]
        if len(r.shape(ins[0])) != 4:
            raise UnsupportedError(name, f"{kind} of a rank-{len(r.shape(ins[0]))} input (NHWC only)")
        size = [int(v) for v in r.const_int(name, ins[1]).reshape(-1)]
        if len(size) != 2 or min(size) < 1:
            raise TinyTrainError(f"layer {name!r}: {kind} to size {size}")
        y = r.activation(name, outs[0], computed_shape=(1, size[0], size[1], xt.shape[3]))
        return Op(name, self.type, [x], [y], {"align_corners": align, "half_pixel_centers": half})

    def from_keras(self, imp, layer, ins, outs, cfg):
        """UpSampling2D (size, interpolation), UpSampling1D (size along T), Resizing (height,
        width, interpolation): nearest or bilinear, as the layer says. TensorFlow's UpSampling
        is an integer repeat (nearest) or a half-pixel bilinear resize; Resizing resizes with
        half-pixel centres."""
        imp.check_channels_last(layer, cfg)
        kind = type(layer).__name__
        x = imp.input(layer, ins[0])
        _, h, w, c = imp.tensors[x].shape
        interpolation = "nearest" if kind == "UpSampling1D" else cfg.get("interpolation", "nearest")
        if interpolation not in ("nearest", "bilinear"):
            raise UnsupportedError(layer.name, f"{kind} with interpolation {interpolation!r}")
        attrs = {"align_corners": False, "half_pixel_centers": kind == "Resizing" or interpolation == "bilinear"}
        if kind == "UpSampling1D":
            out_hw = (h, w * int(cfg["size"]))
        elif kind == "UpSampling2D":
            sh, sw = (int(v) for v in cfg["size"])
            out_hw = (h * sh, w * sw)
        else:
            if cfg.get("crop_to_aspect_ratio") or cfg.get("pad_to_aspect_ratio"):
                raise UnsupportedError(layer.name, "Resizing with crop/pad to the aspect ratio")
            out_hw = (int(cfg["height"]), int(cfg["width"]))
        if interpolation == "nearest":
            op_type = "resize_nearest"
            if kind != "Resizing":
                attrs = {"align_corners": False, "half_pixel_centers": False, "exact": True}
        else:
            op_type = "resize_bilinear"
        imp.emit(layer, op_type, [x], outs[0], attrs, shape=(1, out_hw[0], out_hw[1], c))

    # --- graph facts ------------------------------------------------------------------------------
    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        expect_rank4(g, op, op.outputs[0])
        same_dtype(g, op)
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if x.shape[3] != y.shape[3]:
            raise UnsupportedError(op.name, f"{op.type} from {x.shape} to {y.shape} (channels differ)")

    def backward_unsupported(self, g, op):
        return requantizing(g, op)

    def dims(self, g, op):
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return x.shape[1:3], y.shape[1:3]

    def _table(self, em, op, role: str, dtype: str, values) -> object:
        key = (self.type, op.name, role)
        if key not in em.cache:
            em.cache[key] = em.array(f"{op.name}_{role}", dtype, values, f"{op.name} {role}")
        return em.cache[key]


class ResizeNearest(_Resize):
    type = "resize_nearest"
    summary = "nearest-neighbour resize / integer upsampling (UpSampling2D, RESHAPE+TILE)"
    attrs = {"align_corners": False, "half_pixel_centers": False, "exact": False}
    tflite_ops = ("RESIZE_NEAREST_NEIGHBOR", "TILE")
    keras_layers = ("UpSampling2D", "UpSampling1D", "Resizing")     # bilinear ones too (from_keras)

    def tables(self, g, op):
        (h, w), (oh, ow) = self.dims(g, op)
        a = [bool(self.attr(op, k)) for k in ("align_corners", "half_pixel_centers", "exact")]
        return nearest_index(h, oh, *a), nearest_index(w, ow, *a)

    def from_tflite(self, r, name, kind, op, ins, outs):
        if kind == "TILE":
            return self._tile(r, name, ins, outs)
        return super().from_tflite(r, name, kind, op, ins, outs)

    def _tile(self, r, name, ins, outs):
        """TILE of one size-1 axis (the converter's nearest UpSampling: RESHAPE to rank 5 or 4
        inserting that axis, TILE, RESHAPE back): an integer repeat along H or W of the IR
        tensor the file's tensor is a view of. Other TILEs stay refused."""
        shape = tuple(r.file_shapes.get(ins[0]) or r.shape(ins[0]))
        mult = [int(m) for m in r.const_int(name, ins[1]).reshape(-1)]
        axes = [k for k, m in enumerate(mult) if m != 1]
        rank = len(shape)
        if (len(mult) != rank or rank not in (4, 5) or len(axes) != 1 or shape[0] != 1
                or not 1 <= axes[0] <= rank - 2 or shape[axes[0]] != 1 or min(mult) < 1):
            raise UnsupportedError(name, f"TILE of {shape} by {mult} (only the repeat of one "
                                         "size-1 axis that an upsampling makes)")
        k, m, c = axes[0], mult[axes[0]], shape[-1]
        x = r.activation(name, ins[0], view_ok=True)
        if k == rank - 2 and k >= 2:        # repeat each pixel of a row: along W
            view = (1, int(np.prod(shape[1:k - 1])), shape[k - 1], c)
            out = (1, view[1], view[2] * m, c)
        else:                               # repeat each row: along H
            view = (1, int(np.prod(shape[1:k])), int(np.prod(shape[k + 1:rank - 1])), c)
            out = (1, view[1] * m, view[2], c)
        src, ops = r.as_shape(name, x, view)
        prev = r.ops[-1] if r.ops else None
        if (not ops and prev is not None and prev.type == self.type and prev.outputs == [src]
                and prev.attrs.get("exact") and r.readers(src) == 1):
            # the second TILE of an UpSampling2D reads only the first one's output: one op
            # (repeats compose: (i // a) // b == i // (a * b), what `exact` computes)
            r.ops.pop()
            del r.tensors[src]
            src, name = prev.inputs[0], prev.name
        y = r.activation(name, outs[0], ir_shape=out)
        return ops + [Op(name, self.type, [src], [y], {"align_corners": False, "half_pixel_centers": False,
                                                       "exact": True})]

    def ref_s8(self, g, op, args):
        return resize_nearest(hwc_of(args[0], op), *self.tables(g, op))

    def ref_f32(self, g, op, args):
        return resize_nearest(hwc_of(args[0], op), *self.tables(g, op))

    float16 = True      # resize_nearest_f16.c (a copy), resize_backward_f16.c (sums rounded once)

    def ref_f16(self, g, op, args):
        return resize_nearest(hwc_of(args[0], op), *self.tables(g, op))

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        iy, ix = self.tables(g, op)
        fn = em.kernel(f"tt_resize_nearest_{ {'int8': 's8', 'float16': 'f16'}.get(x.dtype, 'f32') }")
        return [em.call(fn, em.ptr(op.inputs[0]), em.dims(x), self._table(em, op, "rows", "int32", iy),
                        self._table(em, op, "cols", "int32", ix), em.ptr(op.outputs[0]), em.dims(y))]

    def vjp(self, ctx, op, dy, step):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return {}, {}
        g = ctx.graph
        if g.tensors[x].dtype == "float16":       # the float32 sums the _f16 kernel rounds once
            return {x: f16.resize_nearest_grad(hwc_of(dy, op), *self.tables(g, op), self.dims(g, op)[0])}, {}
        return {x: resize_nearest_grad(dy, *self.tables(g, op), self.dims(g, op)[0])}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        g = em.graph
        iy, ix = self.tables(g, op)
        args = [t.grad(step.grad_out), em.dims(g.tensors[op.outputs[0]]), self._table(em, op, "rows", "int32", iy),
                self._table(em, op, "cols", "int32", ix)]
        if g.tensors[x].dtype == "float16":
            (h, w), _ = self.dims(g, op)
            fn = "tt_resize_nearest_grad_input_f16"
            args += [self._table(em, op, "row_range", "int32", source_ranges(h, iy)),
                     self._table(em, op, "col_range", "int32", source_ranges(w, ix))]
        else:
            fn = "tt_resize_nearest_grad_input_f32"
        return [em.call(em.kernel(fn), *args, t.acc(step, x), t.grad(step.grad_inputs[x]), em.dims(g.tensors[x]))]


class ResizeBilinear(_Resize):
    type = "resize_bilinear"
    summary = "bilinear resize (UpSampling2D bilinear, RESIZE_BILINEAR)"
    tflite_ops = ("RESIZE_BILINEAR",)

    def check(self, g, op):
        super().check(g, op)
        if self.attr(op, "align_corners") and self.attr(op, "half_pixel_centers"):
            raise UnsupportedError(op.name, "RESIZE_BILINEAR with both align_corners and "
                                            "half_pixel_centers (LiteRT refuses it too)")

    def tables(self, g, op, int8: bool):
        """Per-axis (lo, hi, frac) tables: int8's 10-bit integer ones, or float32's."""
        (h, w), (oh, ow) = self.dims(g, op)
        a = (bool(self.attr(op, "align_corners")), bool(self.attr(op, "half_pixel_centers")))
        fn = bilinear_axis_s8 if int8 else bilinear_axis_f32
        return fn(h, oh, *a), fn(w, ow, *a)

    def grad_tables(self, g, op):
        """The tables of the op's own path with frac as a float fraction (the VJP's weights)."""
        int8 = self.is_int8(g, op)
        return tuple((lo, hi, (np.asarray(fr, np.float64) / 1024.0).astype(F32) if int8 else fr)
                     for lo, hi, fr in self.tables(g, op, int8))

    def ref_s8(self, g, op, args):
        return resize_bilinear_s8(hwc_of(args[0], op), *self.tables(g, op, True))

    def ref_f32(self, g, op, args):
        return resize_bilinear_f32(hwc_of(args[0], op), *self.tables(g, op, False))

    float16 = True      # resize_bilinear_f16.c, resize_backward_f16.c: float32 arithmetic, one rounding

    def ref_f16(self, g, op, args):
        return f16.resize_bilinear(hwc_of(args[0], op), *self.tables(g, op, False))

    def _axis_args(self, em, op, tabs, frac_dtype: str, role: str) -> list:
        out = []
        for axis, (lo, hi, fr) in zip(("rows", "cols"), tabs):
            out.append(self._table(em, op, f"{axis}_index", "int32", np.concatenate([lo, hi])))
            out.append(self._table(em, op, f"{axis}_{role}", frac_dtype, fr))
        return out

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        int8 = self.is_int8(g, op)
        tabs = self._axis_args(em, op, self.tables(g, op, int8), "int32" if int8 else "float32", "frac")
        fn = em.kernel(f"tt_resize_bilinear_{ {'int8': 's8', 'float16': 'f16'}.get(x.dtype, 'f32') }")
        return [em.call(fn, em.ptr(op.inputs[0]), em.dims(x), *tabs, em.ptr(op.outputs[0]), em.dims(y))]

    def vjp(self, ctx, op, dy, step):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return {}, {}
        g = ctx.graph
        if g.tensors[x].dtype == "float16":       # the float32 sums the _f16 kernel rounds once
            return {x: f16.resize_bilinear_grad(hwc_of(dy, op), *self.grad_tables(g, op), self.dims(g, op)[0])}, {}
        return {x: resize_bilinear_grad(dy, *self.grad_tables(g, op), self.dims(g, op)[0])}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        g = em.graph
        grad_tables = self.grad_tables(g, op)
        tabs = self._axis_args(em, op, grad_tables, "float32", "weight")
        fn = "tt_resize_bilinear_grad_input_f32"
        if g.tensors[x].dtype == "float16":
            fn = "tt_resize_bilinear_grad_input_f16"
            for axis, n, (lo, hi, _) in zip(("row", "col"), self.dims(g, op)[0], grad_tables):
                tabs.append(self._table(em, op, f"{axis}_range", "int32", source_ranges(n, lo, hi)))
        return [em.call(em.kernel(fn), t.grad(step.grad_out), em.dims(g.tensors[op.outputs[0]]), *tabs,
                        t.acc(step, x), t.grad(step.grad_inputs[x]), em.dims(g.tensors[x]))]


UNITS = [ResizeNearest(), ResizeBilinear()]
