"""depthwise_conv2d: depthwise convolution, depth multiplier 1. Inputs [x (1,H,W,C),
weight HWC, bias (C,)].

Attributes: stride, pad, dilation, activation (as conv2d). Memory-pass attributes
(tinytrain.passes.inplace_dw): `inplace` (the output may overwrite the input) with
`scratch` (a plane of H*W bytes for the reference kernel, a ring of input rows for its
variants). int8: TFLite's reference DepthwiseConvPerChannel.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..fixedpoint import add_bias_s32, requantize_s8
from ..ir import ACT_CODES
from . import f16
from ..kernel_prep import dw_inplace_scratch_bytes
from .base import expect_rank4, hwc_of
from .weighted import WeightedOp
from .window import activate_f32, geometry, window_output_shape, pad4, taps, unpad4, window4, window_input


def depthwise_conv2d_s8(x, w, bias, stride, pad, dilation, q: dict, out_hw) -> np.ndarray:
    """x (H, W, C) int8, w (KH, KW, C) int8, bias (C,) int32 or None."""
    xs = x.astype(np.int64) - q["in_zp"]
    k = w.shape[0:2]
    buf = window_input(xs, out_hw, k, stride, pad, dilation, 0)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[2]), dtype=np.int64)
    wi = w.astype(np.int64)
    for ky, kx, view in taps(buf, out_hw, k, stride, dilation):
        acc += view * wi[ky, kx]
    return requantize_s8(add_bias_s32(acc, bias), q)


def depthwise_conv2d_f32(x, w, bias, stride, pad, dilation, act, out_hw) -> np.ndarray:
    k = w.shape[0:2]
    buf = window_input(x.astype(np.float64), out_hw, k, stride, pad, dilation, 0.0)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[2]))
    for ky, kx, view in taps(buf, out_hw, k, stride, dilation):
        acc += view * w[ky, kx].astype(np.float64)
    if bias is not None:
        acc += bias
    return activate_f32(acc.astype(np.float32), act)


def depthwise_conv2d_backward(x, w, dy, stride, pad, dil, need_dx=True, k=None):
    """(dx, dW[..., :k], db); k: trained channels [0, k) of the weight."""
    _, oh, ow, c = dy.shape
    k = c if k is None else k
    xp = pad4(x, pad)
    dy64 = dy.astype(np.float64)
    dxp = np.zeros(xp.shape, np.float64) if need_dx else None
    dw = np.zeros(w.shape[:2] + (k,), np.float64)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            win = window4(xp, i, j, oh, ow, stride, dil)
            dw[i, j, :] = np.einsum("nhwc,nhwc->c", dy64[..., :k], win[..., :k])
            if need_dx:
                window4(dxp, i, j, oh, ow, stride, dil)[...] += dy64 * w[i, j, :].astype(np.float64)
    dx = None if dxp is None else unpad4(dxp, pad).astype(np.float32)
    return dx, dw.astype(np.float32), dy64.sum(axis=(0, 1, 2)).astype(np.float32)


class DepthwiseConv2D(WeightedOp):
    type = "depthwise_conv2d"
    summary = "depthwise 2-D convolution (HWC weights, depth multiplier 1), fused relu/relu6"
    attrs = {"stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1), "activation": "none"}
    weight_out_axis = 2
    weight_in_axis = 2
    channelwise = True
    tflite_ops = ("DEPTHWISE_CONV_2D",)
    tflite_inputs = 2

    keras_layers = ("DepthwiseConv2D", "DepthwiseConv1D")

    def from_tflite(self, r, name, kind, op, ins, outs):
        return self.conv_from_tflite(r, name, op, ins, outs, depthwise=True)

    def from_keras(self, imp, layer, ins, outs, cfg):
        self.conv_from_keras(imp, layer, ins, outs, cfg, depthwise=True)

    def channel_params(self, g, op):
        return {op.inputs[1]: 2, op.inputs[2]: 0}

    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        w = g.tensors[op.inputs[1]]
        c = g.tensors[op.inputs[0]].shape[3]
        if len(w.shape) != 3 or w.shape[2] != c:
            raise UnsupportedError(op.name, f"depthwise weights {w.shape} for {c} channels "
                                            "(HWC, depth multiplier 1)")
        if op.attrs.get("inplace") and not self.is_int8(g, op):
            raise UnsupportedError(op.name, "in-place float depthwise")

    update_channel_first = True

    def output_shape(self, g, op):
        return window_output_shape(g, op, self.kernel_hw(g, op), self.out_channels(g, op))

    def kernel_hw(self, g, op) -> tuple[int, int]:
        w = g.tensors[op.inputs[1]]
        return w.shape[0], w.shape[1]

    def update_scratch(self, g, op, k):
        kh, kw = self.kernel_hw(g, op)
        return kh * kw

    def macs(self, g, op):
        kh, kw, _ = g.tensors[op.inputs[1]].shape
        return g.tensors[op.outputs[0]].size * kh * kw

    def ref_s8(self, g, op, args):
        stride, pad, dil = geometry(op)
        return depthwise_conv2d_s8(hwc_of(args[0], op), args[1], args[2], stride, pad, dil,
                                   self.params(g, op), g.tensors[op.outputs[0]].shape[1:3])

    def ref_f16(self, g, op, args):
        stride, pad, dil = geometry(op)
        fn = f16.depthwise_mve if self.helium(op) else f16.depthwise
        return fn(hwc_of(args[0], op), args[1], args[2], stride, pad, dil, self.attr(op, "activation"),
                  g.tensors[op.outputs[0]].shape[1:3])

    def backward_f16(self, x, w, dy, op, need_dx, k, x_shape):
        stride, pad, dil = geometry(op)
        dy = dy[0]
        gin = f16.depthwise_grad_input_mve if self.helium(op) else f16.depthwise_grad_input
        dx = gin(dy, w, x_shape[1:3], stride, pad, dil)[None] if need_dx else None
        gw = f16.depthwise_grad_weight_mve if self.helium(op) else f16.depthwise_grad_weight
        dw = gw(x[0], dy, w.shape[0], w.shape[1], stride, pad, dil, k)
        return dx, dw, f16.bias_grad(dy)

    def ref_f32(self, g, op, args):
        stride, pad, dil = geometry(op)
        return depthwise_conv2d_f32(hwc_of(args[0], op), args[1], args[2], stride, pad, dil,
                                    self.attr(op, "activation"), g.tensors[op.outputs[0]].shape[1:3])

    def simd_kernel(self, g, op):
        if not self.is_int8(g, op):
            return None
        return "tt_depthwise_conv2d_inplace_s8" if op.attrs.get("inplace") else "tt_depthwise_conv2d_s8"

    def scratch_bytes(self, g, op):
        """In place: the reference copies one channel plane (h * w bytes); its variants keep
        a ring of the input rows one output row spans instead (kernel_prep)."""
        variant = op.attrs.get("variant")
        if not (op.attrs.get("inplace") and variant):
            return super().scratch_bytes(g, op)
        _, h, w, _ = g.tensors[op.inputs[0]].shape
        kh, kw = self.kernel_hw(g, op)
        return dw_inplace_scratch_bytes(variant, h, w, kh, kw, self.attr(op, "dilation")[0])

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        kh, kw = self.kernel_hw(g, op)
        args = [em.ptr(op.inputs[0]), em.dims(x), em.ptr(op.inputs[1]), em.ptr(op.inputs[2]),
                kh, kw, em.geom(op)]
        if not self.is_int8(g, op):
            fn, last = self.forward_kernel(em, op, "tt_depthwise_conv2d")
            return [em.call(fn, *args, last, em.ptr(op.outputs[0]), em.dims(y))]
        q = self.params(g, op)
        fn = em.variant_kernel(self.simd_kernel(g, op), op)
        args.append(em.requant(op, q))
        if fn.endswith("_dsp"):
            args.append(em.rq_dsp(op, q))
        args += [em.ptr(op.outputs[0]), em.dims(y)]
        if op.attrs.get("inplace"):     # tinytrain.passes.inplace_dw: y may sit on x
            args.append(em.view(op.attrs["scratch"]))
        return [em.call(fn, *args)]

    def backward(self, x, w, dy, op, need_dx, k):
        stride, pad, dil = geometry(op)
        return depthwise_conv2d_backward(x, w, dy, stride, pad, dil, need_dx, k)

    def emit_grad_input(self, em, op, t, gy, gx, acc):
        shape = t.conv_shape(op, *self.kernel_hw(em.graph, op))
        w = em.ptr(op.inputs[1])
        if t.quantized:
            # the variants take the reference's arguments and give its floats: any board's best
            fn = em.kernel("tt_depthwise_conv2d_grad_input_s8", allowed={"dsp": True, "mve": True})
            return [em.call(fn, shape, gy, w, t.weight_quant(op),
                            acc, gx)]
        if t.half:
            return [em.call(self.kernel_f16(em, op, "tt_depthwise_conv2d_grad_input_f16"), shape, gy, w, acc, gx)]
        return [em.call(em.kernel("tt_depthwise_conv2d_grad_input_f32"), shape, gy, w, acc, gx)]

    def emit_weight_update(self, em, op, b, t, gy):
        kh, kw = self.kernel_hw(em.graph, op)
        shape = t.conv_shape(op, kh, kw)
        w, ch, u = t.weight_update(op, b, kh * kw)
        x, scratch = t.saved_x(b, op), t.view(b.scratch)
        if t.quantized:
            # the variants take the reference's arguments (its scratch) and give its bytes
            fn = em.kernel("tt_depthwise_conv2d_update_weight_s8", allowed={"dsp": True, "mve": True})
            return [em.call(fn, shape, ch, w, t.weight_quant(op),
                            x, t.act_quant(op.inputs[0]), gy, u, scratch)]
        if t.half:
            return [em.call(self.kernel_f16(em, op, "tt_depthwise_conv2d_update_weight_f16"), shape, ch, w, x, gy,
                            u, scratch)]
        return [em.call(em.kernel("tt_depthwise_conv2d_update_weight_f32"), shape, ch, w, x, gy, u, scratch)]


UNIT = DepthwiseConv2D()
