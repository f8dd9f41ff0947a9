"""transpose_conv: transposed 2-D convolution (Keras Conv2DTranspose, TFLite TRANSPOSE_CONV).
Inputs [x (1,H,W,Cin), weight OHWI (Cout, kh, kw, Cin), bias (Cout,)]; output (1,OH,OW,Cout).
Attributes: stride (sh, sw), pad (top, bottom, left, right), activation.

Input pixel (iy, ix) adds x[iy, ix] * w[:, ky, kx] into output (iy*sh - top + ky, ix*sw -
left + kx) where that lies inside the output. The output size is given (TFLite's first input);
top/left are TFLite's ComputePaddingHeightWidth on the OUTPUT size (SAME: half the padding a
forward conv from the output to the input would need; VALID: 0); bottom/right follow from the
sizes (negative where the output is larger than the taps reach: a VALID output may exceed
(in - 1) * stride + kernel by up to stride - 1, TensorFlow's output_padding).

int8: LiteRT's reference_integer_ops::TransposeConv (per-channel or per-tensor weights, the
multipliers of PopulateConvolutionQuantizationParams, double-rounding requantization, int32
accumulation of (x - zp) * w). LiteRT scatters into an int32 scratch; the C kernel gathers
per output element, which sums the same integers (no scratch).

Training: the VJP w.r.t. the input (a forward correlation of dy with the weights), so the op
may sit inside a trained part of a graph. Its own weights stay frozen: the unit is not
`weighted`, so the training schemes do not count or train it.
"""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import TinyTrainError, UnsupportedError
from ..fixedpoint import add_bias_s32, requantize_s8
from ..ir import ACT_CODES, Op
from .base import OpUnit, expect_rank4, hwc_of, same_dtype
from .window import activate_f32


def _scatter_size(in_hw, k, stride, pad_tl, out_hw) -> tuple[int, int]:
    """A buffer covering every tap of every input pixel and the whole output window."""
    return tuple(max((i - 1) * s + kk, p + o) for i, kk, s, p, o in zip(in_hw, k, stride, pad_tl, out_hw))


def transpose_conv_acc(x, w, stride, pad_tl, out_hw) -> np.ndarray:
    """sum of x[iy, ix, :] . w[oc, ky, kx, :] into output (iy*sh - top + ky, ix*sw - left + kx):
    x (H, W, Cin) and w (Cout, kh, kw, Cin) as float64 (exact for int8 operands)."""
    h, wd, _ = x.shape
    cout, kh, kw, _ = w.shape
    (sh, sw), (pt, pl) = stride, pad_tl
    fh, fw = _scatter_size((h, wd), (kh, kw), stride, pad_tl, out_hw)
    buf = np.zeros((fh, fw, cout), np.float64)
    for ky in range(kh):
        for kx in range(kw):
            buf[ky: ky + (h - 1) * sh + 1: sh, kx: kx + (wd - 1) * sw + 1: sw] += x @ w[:, ky, kx, :].T
    return buf[pt: pt + out_hw[0], pl: pl + out_hw[1]]


def transpose_conv_s8(x, w, bias, stride, pad_tl, q: dict, out_hw) -> np.ndarray:
    """x (H, W, Cin) int8, w (Cout, kh, kw, Cin) int8, bias (Cout,) int32 or None."""
    acc = transpose_conv_acc(x.astype(np.float64) - q["in_zp"], w.astype(np.float64), stride, pad_tl, out_hw)
    return requantize_s8(add_bias_s32(acc.astype(np.int64), bias), q)


def transpose_conv_f32(x, w, bias, stride, pad_tl, act, out_hw) -> np.ndarray:
    acc = transpose_conv_acc(x.astype(np.float64), w.astype(np.float64), stride, pad_tl, out_hw)
    if bias is not None:
        acc = acc + bias
    return activate_f32(acc.astype(np.float32), act)


def transpose_conv_grad_input(dy, w, stride, pad_tl, in_hw) -> np.ndarray:
    """dx (1, H, W, Cin) of the transposed convolution given dy (1, OH, OW, Cout): the
    adjoint of the scatter, a strided correlation of dy with w (real values)."""
    _, oh, ow, cout = dy.shape
    _, kh, kw, cin = w.shape
    (sh, sw), (pt, pl) = stride, pad_tl
    h, wd = in_hw
    fh, fw = _scatter_size(in_hw, (kh, kw), stride, pad_tl, (oh, ow))
    buf = np.zeros((fh, fw, cout), np.float64)
    buf[pt: pt + oh, pl: pl + ow] = dy[0]
    w64 = w.astype(np.float64)
    dx = np.zeros((h, wd, cin), np.float64)
    for ky in range(kh):
        for kx in range(kw):
            dx += buf[ky: ky + (h - 1) * sh + 1: sh, kx: kx + (wd - 1) * sw + 1: sw] @ w64[:, ky, kx, :]
    return dx[None].astype(np.float32)


def tflite_transpose_pad(valid: bool, out_size: int, kernel: int, stride: int, in_size: int) -> tuple[int, int]:
    """(before, after) of a TRANSPOSE_CONV axis: LiteRT's ComputePaddingHeightWidth on the
    output size gives `before`; `after` is what the input's taps leave over."""
    from ..frontends.tflite import tflite_padding
    before = tflite_padding(valid, out_size, kernel, stride)[0]
    return before, (in_size - 1) * stride + kernel - out_size - before


class TransposeConv(OpUnit):
    type = "transpose_conv"
    summary = "transposed 2-D convolution (OHWI weights, frozen in training), fused relu/relu6"
    attrs = {"stride": (1, 1), "pad": (0, 0, 0, 0), "activation": "none"}
    tflite_ops = ("TRANSPOSE_CONV",)
    tflite_inputs = 3
    keras_layers = ("Conv2DTranspose",)

    # --- import ---------------------------------------------------------------------------
    def from_tflite(self, r, name, kind, op, ins, outs):
        """Inputs [output shape, weights OHWI, x, bias (optional, LiteRT 2.x)]."""
        from ..frontends.tflite import at_least_one
        opts = r.required_options(name, op, r.s.TransposeConvOptions)
        x = r.activation(name, ins[2])
        xt = r.tensors[x]
        if len(xt.shape) != 4:
            raise UnsupportedError(name, f"transposed convolution of a rank-{len(xt.shape)} input")
        w_shape = r.shape(ins[1])
        if len(w_shape) != 4 or w_shape[3] != xt.shape[3]:
            raise UnsupportedError(name, f"transposed convolution weights {w_shape} for {xt.shape[3]} "
                                         "input channels")
        cout, kh, kw, _ = w_shape
        out_shape = tuple(int(d) for d in r.const_int(name, ins[0]).reshape(-1))
        w = r.weight(name, ins[1], xt.dtype, axis=0)
        b = r.bias(name, ins[3] if len(ins) > 3 else -1, x, w, cout)
        sh, sw = opts.StrideH(), opts.StrideW()
        at_least_one(name, stride=(sh, sw), kernel=(kh, kw))
        y = r.activation(name, outs[0], computed_shape=out_shape)
        yt = r.tensors[y]
        if len(yt.shape) != 4 or yt.shape[3] != cout:
            raise UnsupportedError(name, f"transposed convolution output {yt.shape} for {cout} filters")
        valid = opts.Padding() == r.s.Padding.VALID
        for axis, k, s in ((1, kh, sh), (2, kw, sw)):   # LiteRT's Prepare checks this too
            back = (yt.shape[axis] - k + s) // s if valid else (yt.shape[axis] + s - 1) // s
            if back != xt.shape[axis]:
                raise TinyTrainError(f"layer {name!r}: TRANSPOSE_CONV output {yt.shape} does not come from "
                                     f"input {xt.shape} with kernel {(kh, kw)}, strides {(sh, sw)}")
        pt, pb = tflite_transpose_pad(valid, yt.shape[1], kh, sh, xt.shape[1])
        pl, pr = tflite_transpose_pad(valid, yt.shape[2], kw, sw, xt.shape[2])
        return Op(name, self.type, [x, w, b], [y], {"stride": (sh, sw), "pad": (pt, pb, pl, pr),
                                                     "activation": r.fused(name, opts)})

    def from_keras(self, imp, layer, ins, outs, cfg):
        """Keras Conv2DTranspose: kernel (kh, kw, out, in) -> OHWI; the output size Keras gives."""
        imp.check_channels_last(layer, cfg)
        if cfg.get("output_padding") is not None:
            raise UnsupportedError(layer.name, f"output_padding {cfg['output_padding']}")
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise UnsupportedError(layer.name, f"dilation_rate {tuple(cfg['dilation_rate'])}")
        if cfg.get("padding") not in ("same", "valid"):
            raise UnsupportedError(layer.name, f"padding {cfg.get('padding')!r}")
        x = imp.input(layer, ins[0])
        xshape = imp.tensors[x].shape
        if len(xshape) != 4 or imp.is_sequence(ins[0]):
            raise UnsupportedError(layer.name, f"transposed convolution of a rank-{len(ins[0].shape)} input")
        weights = imp.weights(layer)
        kernel = np.asarray(weights[0], np.float32)
        w = np.ascontiguousarray(kernel.transpose(2, 0, 1, 3))           # (kh, kw, out, in) -> OHWI
        cout, kh, kw, _ = w.shape
        bias = (np.asarray(weights[1], np.float32) if cfg.get("use_bias", True) else np.zeros(cout, np.float32))
        oshape = imp.shape(layer, outs[0])
        sh, sw = tuple(cfg["strides"])
        valid = cfg["padding"] == "valid"
        pt, pb = tflite_transpose_pad(valid, oshape[1], kh, sh, xshape[1])
        pl, pr = tflite_transpose_pad(valid, oshape[2], kw, sw, xshape[2])
        w_name = imp.new_tensor(f"{layer.name}.weight", w.shape, w)
        b_name = imp.new_tensor(f"{layer.name}.bias", bias.shape, bias)
        op = imp.emit(layer, self.type, [x, w_name, b_name], outs[0],
                      {"stride": (sh, sw), "pad": (pt, pb, pl, pr), "activation": "none"})
        imp.fused_activation(layer, op, cfg, outs[0])

    # --- graph facts --------------------------------------------------------------------------
    def check(self, g, op):
        super().check(g, op)
        if len(op.inputs) != 3:
            raise UnsupportedError(op.name, f"{op.type} with {len(op.inputs)} inputs (x, weight, bias)")
        expect_rank4(g, op, op.inputs[0])
        expect_rank4(g, op, op.outputs[0])
        same_dtype(g, op)
        x, w, b = (g.tensors[t] for t in op.inputs)
        y = g.tensors[op.outputs[0]]
        if not (w.is_const and b.is_const):
            raise UnsupportedError(op.name, f"{op.type} with non-constant weight or bias")
        if len(w.shape) != 4 or w.shape[3] != x.shape[3] or w.shape[0] != y.shape[3]:
            raise UnsupportedError(op.name, f"{op.type} weights {w.shape} from {x.shape} to {y.shape} (OHWI)")
        want_b = "int32" if x.dtype == "int8" else x.dtype
        if w.dtype != x.dtype or b.dtype != want_b or b.shape != (w.shape[0],):
            raise UnsupportedError(op.name, f"{op.type} with {w.dtype} weights and {b.dtype} bias {b.shape} "
                                            f"on {x.dtype} activations")
        stride, (pt, _, pl, _) = tuple(self.attr(op, "stride")), tuple(self.attr(op, "pad"))
        if min(stride) < 1 or min(pt, pl) < 0:
            raise UnsupportedError(op.name, f"{op.type} stride {stride}, padding {self.attr(op, 'pad')}")

    def geometry(self, g, op):
        """(stride, (top, left), (kh, kw), output (OH, OW))."""
        pt, _, pl, _ = self.attr(op, "pad")
        w = g.tensors[op.inputs[1]]
        return (tuple(self.attr(op, "stride")), (pt, pl), (w.shape[1], w.shape[2]),
                g.tensors[op.outputs[0]].shape[1:3])

    def macs(self, g, op):
        x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        return x.shape[1] * x.shape[2] * int(np.prod(w.shape))

    def params(self, g, op):
        return quant.conv_requant(g, op, g.tensors[op.inputs[1]].shape[0])

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])

    # --- references -----------------------------------------------------------------------------
    def ref_s8(self, g, op, args):
        stride, pad_tl, _, out_hw = self.geometry(g, op)
        return transpose_conv_s8(hwc_of(args[0], op), args[1], args[2], stride, pad_tl, self.params(g, op), out_hw)

    def ref_f32(self, g, op, args):
        stride, pad_tl, _, out_hw = self.geometry(g, op)
        return transpose_conv_f32(hwc_of(args[0], op), args[1], args[2], stride, pad_tl,
                                  self.attr(op, "activation"), out_hw)

    # transpose_conv_f16.c, transpose_conv_backward_f16.c (float32 sums, one rounding); on Helium
    # boards transpose_conv_f16_mve.c (half lanes, fused multiply-adds: tinytrain.precision
    # records the choice as attrs["f16_variant"], which the reference models)
    float16 = True

    def helium(self, op) -> bool:
        return op.attrs.get("f16_variant") == "mve"

    def ref_f16(self, g, op, args):
        from . import f16
        stride, pad_tl, _, out_hw = self.geometry(g, op)
        fn = f16.transpose_conv_mve if self.helium(op) else f16.transpose_conv
        return fn(hwc_of(args[0], op), args[1], args[2], stride, pad_tl, self.attr(op, "activation"), out_hw)

    # --- C ----------------------------------------------------------------------------------------
    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        _, _, (kh, kw), _ = self.geometry(g, op)
        if self.is_int8(g, op):
            fn, last = em.kernel("tt_transpose_conv_s8"), em.requant(op, self.params(g, op))
        else:
            sfx = "f16" if x.dtype == "float16" else "f32"
            fn = em.kernel(f"tt_transpose_conv_{sfx}", allowed={"mve": self.helium(op)})
            last = ACT_CODES[self.attr(op, "activation")]
        tail = [em.kernel_scratch(op)] if fn.endswith("_f16_mve") else []
        return [em.call(fn, em.ptr(op.inputs[0]), em.dims(x), em.ptr(op.inputs[1]), em.ptr(op.inputs[2]),
                        kh, kw, em.geom(op), last, em.ptr(op.outputs[0]), em.dims(y), *tail)]

    def kernel_scratch_bytes(self, g, op):
        """tt_transpose_conv_f16_mve's scratch: a block of output channels' weights, tap-major."""
        if not self.helium(op):
            return 0
        from .f16 import conv2d_f16_mve_scratch_bytes
        cout, kh, kw, cin = g.tensors[op.inputs[1]].shape
        return conv2d_f16_mve_scratch_bytes(kh, kw, cin, cout)

    # --- training: the input gradient (the weights stay frozen) ----------------------------------
    def vjp(self, ctx, op, dy, step):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return {}, {}
        stride, pad_tl, _, _ = self.geometry(ctx.graph, op)
        if ctx.graph.tensors[x].dtype == "float16":     # the float32 sums the _f16 kernel rounds once
            from . import f16
            fn = f16.transpose_conv_grad_input_mve if self.helium(op) else f16.transpose_conv_grad_input
            return {x: fn(hwc_of(dy, op), ctx.real(op.inputs[1]), stride, pad_tl, ctx.graph.tensors[x].shape[1:3])}, {}
        w = ctx.real(op.inputs[1])
        return {x: transpose_conv_grad_input(dy, w, stride, pad_tl, ctx.graph.tensors[x].shape[1:3])}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        g = em.graph
        xt, yt = g.tensors[x], g.tensors[op.outputs[0]]
        _, _, (kh, kw), _ = self.geometry(g, op)
        gy, gx, acc = t.grad(step.grad_out), t.grad(step.grad_inputs[x]), t.acc(step, x)
        if xt.dtype == "int8":
            return [em.call(em.kernel("tt_transpose_conv_grad_input_s8"), gy, em.dims(yt), em.ptr(op.inputs[1]),
                            t.weight_quant(op), kh, kw, em.geom(op), acc, gx, em.dims(xt))]
        sfx = "f16" if xt.dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_transpose_conv_grad_input_{sfx}", allowed={"mve": self.helium(op)}), gy,
                        em.dims(yt), em.ptr(op.inputs[1]),
                        kh, kw, em.geom(op), acc, gx, em.dims(xt))]


UNIT = TransposeConv()
