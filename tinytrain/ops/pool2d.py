"""avg_pool2d and max_pool2d. Input [x (1,H,W,C)]; attributes kernel (kh, kw), stride,
pad, activation. int8: TFLite's reference pooling (equal input/output quantization;
average rounds half away from zero over the in-bounds taps)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import ACT_CODES
from . import f16
from .base import OpUnit, expect_rank4, hwc_of, same_dtype
from .window import (activate_f32, geometry, window_output_shape, pad4, taps, unpad4, valid_count, window4,
                     window_input)


def _round_div_away(acc: np.ndarray, count) -> np.ndarray:
    """TFLite's (acc +- count/2) / count with C truncating division."""
    count = np.asarray(count, np.int64)
    safe = np.maximum(count, 1)
    pos = (acc + safe // 2) // safe
    neg = -((-acc + safe // 2) // safe)
    return np.where(count > 0, np.where(acc > 0, pos, neg), acc)


def avg_pool2d_s8(x, k, stride, pad, act_min, act_max, out_hw) -> np.ndarray:
    buf = window_input(x.astype(np.int64), out_hw, k, stride, pad, (1, 1), 0)
    acc = np.zeros((out_hw[0], out_hw[1], x.shape[2]), dtype=np.int64)
    for _, _, view in taps(buf, out_hw, k, stride, (1, 1)):
        acc += view
    count = valid_count(x.shape[:2], out_hw, k, stride, pad)[:, :, None]
    return np.clip(_round_div_away(acc, count), act_min, act_max).astype(np.int8)


def max_pool2d_s8(x, k, stride, pad, act_min, act_max, out_hw) -> np.ndarray:
    buf = window_input(x.astype(np.int64), out_hw, k, stride, pad, (1, 1), -128)
    m = np.full((out_hw[0], out_hw[1], x.shape[2]), -128, dtype=np.int64)
    for _, _, view in taps(buf, out_hw, k, stride, (1, 1)):
        m = np.maximum(m, view)
    return np.clip(m, act_min, act_max).astype(np.int8)


def avg_pool2d_f32(x, k, stride, pad, act, out_hw) -> np.ndarray:
    """Mean of the taps inside the input (TFLite: padding is not counted)."""
    buf = window_input(x.astype(np.float64), out_hw, k, stride, pad, (1, 1), 0.0)
    acc = np.zeros((out_hw[0], out_hw[1], x.shape[2]))
    for _, _, view in taps(buf, out_hw, k, stride, (1, 1)):
        acc += view
    count = valid_count(x.shape[:2], out_hw, k, stride, pad)[:, :, None]
    return activate_f32((acc / np.maximum(count, 1)).astype(np.float32), act)


def max_pool2d_f32(x, k, stride, pad, act, out_hw) -> np.ndarray:
    buf = window_input(x.astype(np.float32), out_hw, k, stride, pad, (1, 1), -np.inf)
    m = np.full((out_hw[0], out_hw[1], x.shape[2]), -np.inf, dtype=np.float32)
    for _, _, view in taps(buf, out_hw, k, stride, (1, 1)):
        m = np.maximum(m, view)
    return activate_f32(m, act).astype(np.float32)


def pool2d_backward(x, dy, kernel, stride, pad, kind):
    """avg: dy spread over the window's in-bounds elements; max: to the first maximum
    (row-major window order), as the C kernels."""
    _, oh, ow, c = dy.shape
    dy64 = dy.astype(np.float64)
    xp = pad4(x.astype(np.float64), pad, -np.inf if kind == "max" else 0.0)
    dxp = np.zeros(xp.shape, np.float64)
    win = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
    if kind == "avg":
        ones = pad4(np.ones_like(x, np.float64), pad, 0.0)
        cnt = sum(window4(ones, i, j, oh, ow, stride, (1, 1)) for i, j in win)
        for i, j in win:
            window4(dxp, i, j, oh, ow, stride, (1, 1))[...] += dy64 / cnt * window4(ones, i, j, oh, ow, stride, (1, 1))
    else:
        best = np.full(dy.shape, -np.inf)
        arg = np.zeros(dy.shape, np.int64)
        for n, (i, j) in enumerate(win):
            w = window4(xp, i, j, oh, ow, stride, (1, 1))
            better = w > best
            best = np.where(better, w, best)
            arg = np.where(better, n, arg)
        for n, (i, j) in enumerate(win):
            window4(dxp, i, j, oh, ow, stride, (1, 1))[...] += np.where(arg == n, dy64, 0.0)
    return unpad4(dxp, pad).astype(np.float32)


class _Pool2D(OpUnit):
    channelwise = True
    attrs = {"kernel": (1, 1), "stride": (1, 1), "pad": (0, 0, 0, 0), "activation": "none"}
    kind = ""

    def from_keras(self, imp, layer, ins, outs, cfg):
        imp.check_channels_last(layer, cfg)
        x = imp.input(layer, ins[0])
        kernel = tuple(cfg["pool_size"])
        strides = tuple(cfg.get("strides") or kernel)
        if imp.is_sequence(ins[0]):      # MaxPooling1D / AveragePooling1D: H = 1
            kernel, strides = (1,) + kernel, (1,) + strides
        pad = imp.conv_padding(layer, cfg, imp.tensors[x].shape[1:3], kernel, strides, (1, 1))
        imp.emit(layer, self.type, [x], outs[0], {"kernel": kernel, "stride": strides, "pad": pad,
                                                  "activation": "none"})

    def from_tflite(self, r, name, kind, op, ins, outs):
        from ..errors import UnsupportedError
        from ..frontends.tflite import at_least_one, tflite_padding
        from ..ir import Op
        opts = r.required_options(name, op, r.s.Pool2DOptions)
        x = r.activation(name, ins[0])
        if len(r.tensors[x].shape) != 4:
            raise UnsupportedError(name, f"pooling of a rank-{len(r.tensors[x].shape)} input")
        _, h, w_in, _ = r.tensors[x].shape
        kh, kw = opts.FilterHeight(), opts.FilterWidth()
        sh, sw = opts.StrideH(), opts.StrideW()
        at_least_one(name, stride=(sh, sw), filter=(kh, kw))
        valid = opts.Padding() == r.s.Padding.VALID
        pt, pb = tflite_padding(valid, h, kh, sh)
        pl, pr = tflite_padding(valid, w_in, kw, sw)
        y = r.activation(name, outs[0])
        return Op(name, self.type, [x], [y], {"kernel": (kh, kw), "stride": (sh, sw), "pad": (pt, pb, pl, pr),
                                              "activation": r.fused(name, opts)})

    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        same_dtype(g, op)

    def output_shape(self, g, op):
        return window_output_shape(g, op, tuple(op.attrs["kernel"]), g.tensors[op.inputs[0]].shape[3])

    def params(self, g, op):
        return quant.pool_params(g, op)

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])

    def ref_s8(self, g, op, args):
        stride, pad, _ = geometry(op)
        p = self.params(g, op)
        fn = avg_pool2d_s8 if self.kind == "avg" else max_pool2d_s8
        return fn(hwc_of(args[0], op), tuple(op.attrs["kernel"]), stride, pad, p["act_min"], p["act_max"],
                  g.tensors[op.outputs[0]].shape[1:3])

    def ref_f32(self, g, op, args):
        stride, pad, _ = geometry(op)
        fn = avg_pool2d_f32 if self.kind == "avg" else max_pool2d_f32
        return fn(hwc_of(args[0], op), tuple(op.attrs["kernel"]), stride, pad, self.attr(op, "activation"),
                  g.tensors[op.outputs[0]].shape[1:3])

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        kh, kw = op.attrs["kernel"]
        if self.is_int8(g, op):
            p = self.params(g, op)
            fn, act = em.kernel(f"tt_{self.type}_s8"), [int(p["act_min"]), int(p["act_max"])]
        else:
            suffix = "f16" if x.dtype == "float16" else "f32"
            # max_pool2d_f16_mve.c, avg_pool2d_f16_mve.c: the same arguments and bits, any Helium board
            fn = em.kernel(f"tt_{self.type}_{suffix}", allowed={"mve": suffix == "f16"})
            act = [ACT_CODES[self.attr(op, "activation")]]
        return [em.call(fn, em.ptr(op.inputs[0]), em.dims(x), kh, kw, em.geom(op), *act,
                        em.ptr(op.outputs[0]), em.dims(y))]

    def emit_backward(self, em, op, step, t):
        if op.inputs[0] not in step.grad_inputs:
            return []
        x = em.graph.tensors[op.inputs[0]]
        shape = t.conv_shape(op, *op.attrs["kernel"])
        gy, gx, acc = t.grad(step.grad_out), t.grad(step.grad_inputs[op.inputs[0]]), t.acc(step, op.inputs[0])
        if self.kind == "avg":
            sfx = "f16" if x.dtype == "float16" else "f32"
            # avg_pool2d_backward_f16_mve.c: the same bits
            return [em.call(em.kernel(f"tt_avg_pool2d_grad_input_{sfx}", allowed={"mve": sfx == "f16"}),
                            shape, gy, acc, gx)]
        fn = em.kernel(f"tt_max_pool2d_grad_input_{ {'int8': 's8', 'float16': 'f16'}.get(x.dtype, 'f32') }",
                       allowed={"mve": x.dtype == "float16"})       # max_pool2d_f16_mve.c: the same bits
        return [em.call(fn, shape, t.view(op.inputs[0]), gy, acc, gx)]

    def vjp(self, ctx, op, dy, step):
        if not step.grad_inputs:
            return {}, {}
        stride, pad, _ = geometry(op)
        x = ctx.real(op.inputs[0])
        return {op.inputs[0]: pool2d_backward(x, dy, op.attrs["kernel"], stride, pad, self.kind)}, {}


class AvgPool2D(_Pool2D):
    type = "avg_pool2d"
    summary = "average pooling (padding not counted)"
    kind = "avg"
    tflite_ops = ("AVERAGE_POOL_2D",)
    keras_layers = ("AveragePooling2D", "AveragePooling1D")

    float16 = True          # avg_pool2d_f16.c, avg_pool2d_backward_f16.c; Helium: *_f16_mve.c, the same bits

    def ref_f16(self, g, op, args):
        stride, pad, _ = geometry(op)
        return f16.avg_pool2d(hwc_of(args[0], op), tuple(op.attrs["kernel"]), stride, pad,
                              self.attr(op, "activation"), g.tensors[op.outputs[0]].shape[1:3])

    def vjp(self, ctx, op, dy, step):
        x = ctx.graph.tensors[op.inputs[0]]
        if not step.grad_inputs or x.dtype != "float16":
            return super().vjp(ctx, op, dy, step)
        stride, pad, _ = geometry(op)
        gx = f16.avg_pool2d_grad(dy[0], x.shape[1:3], tuple(op.attrs["kernel"]), stride, pad)
        return {op.inputs[0]: gx[None]}, {}


class MaxPool2D(_Pool2D):
    type = "max_pool2d"
    summary = "max pooling"
    kind = "max"
    tflite_ops = ("MAX_POOL_2D",)
    keras_layers = ("MaxPooling2D", "MaxPooling1D")

    float16 = True

    def backward_reads(self, g, op):
        return {"x": op.inputs[0]}

    def ref_f16(self, g, op, args):
        """The largest half of each window (exact), as tt_max_pool2d_f16."""
        return self.ref_f32(g, op, [np.asarray(args[0], np.float16).astype(np.float32)]).astype(np.float16)

    def backward_unsupported(self, g, op):
        k, s = op.attrs["kernel"], op.attrs.get("stride", self.attrs["stride"])
        if g.tensors[op.inputs[0]].dtype == "float16" and (s[0] < k[0] or s[1] < k[1]):
            return f"backward of a float16 max pool with overlapping windows (kernel {tuple(k)}, stride {tuple(s)})"
        return None


UNITS = [AvgPool2D(), MaxPool2D()]
