"""conv2d: 2-D convolution. Inputs [x (1,H,W,Cin), weight OHWI, bias (Cout,)].

Attributes: stride (sh, sw), pad (top, bottom, left, right), dilation (dh, dw), activation.
int8: TFLite's reference ConvPerChannel (per-channel or per-tensor weight scales).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ACT_CODES
from ..fixedpoint import add_bias_s32, requantize_s8
from . import f16
from ..kernel_prep import conv2d_scratch_bytes
from .base import expect_rank4, hwc_of
from .weighted import WeightedOp
from .window import activate_f32, geometry, window_output_shape, pad4, taps, unpad4, window4, window_input


def conv2d_s8(x, w, bias, stride, pad, dilation, q: dict, out_hw) -> np.ndarray:
    """x (H, W, Cin) int8, w (Cout, KH, KW, Cin) int8, bias (Cout,) int32 or None."""
    xs = x.astype(np.float64) - q["in_zp"]
    k = w.shape[1:3]
    buf = window_input(xs, out_hw, k, stride, pad, dilation, 0.0)
    wf = w.astype(np.float64)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[0]), dtype=np.float64)
    for ky, kx, view in taps(buf, out_hw, k, stride, dilation):
        acc += view @ wf[:, ky, kx, :].T          # exact: |sums| far below 2^53
    return requantize_s8(add_bias_s32(acc.astype(np.int64), bias), q)


def conv2d_f32(x, w, bias, stride, pad, dilation, act, out_hw) -> np.ndarray:
    """x (H, W, Cin) float32 -> (OH, OW, Cout), sums in float64, one rounding to float32."""
    k = w.shape[1:3]
    buf = window_input(x.astype(np.float64), out_hw, k, stride, pad, dilation, 0.0)
    acc = np.zeros((out_hw[0], out_hw[1], w.shape[0]))
    for ky, kx, view in taps(buf, out_hw, k, stride, dilation):
        acc += view @ w[:, ky, kx, :].T.astype(np.float64)
    if bias is not None:
        acc += bias
    return activate_f32(acc.astype(np.float32), act)


def conv2d_backward(x, w, dy, stride, pad, dil, need_dx=True, k=None):
    """(dx, dW[..., :k], db) of y = conv2d(x, w) + b (real values, (1,H,W,C) arrays);
    dx is None unless need_dx; k: the trained input channels [0, k)."""
    _, oh, ow, _ = dy.shape
    k = w.shape[3] if k is None else k
    xp = pad4(x, pad)
    dy64 = dy.astype(np.float64)
    dxp = np.zeros(xp.shape, np.float64) if need_dx else None
    dw = np.zeros(w.shape[:3] + (k,), np.float64)
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            win = window4(xp, i, j, oh, ow, stride, dil)
            dw[:, i, j, :] = np.einsum("nhwo,nhwc->oc", dy64, win[..., :k])
            if need_dx:
                window4(dxp, i, j, oh, ow, stride, dil)[...] += dy64 @ w[:, i, j, :].astype(np.float64)
    dx = None if dxp is None else unpad4(dxp, pad).astype(np.float32)
    return dx, dw.astype(np.float32), dy64.sum(axis=(0, 1, 2)).astype(np.float32)


class Conv2D(WeightedOp):
    type = "conv2d"
    summary = "2-D convolution (OHWI weights), fused relu/relu6"
    attrs = {"stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1), "activation": "none"}
    weight_out_axis = 0            # output channels of the weight
    weight_in_axis = 3             # input channels of the weight
    tflite_ops = ("CONV_2D",)
    tflite_inputs = 2

    keras_layers = ("Conv2D", "Conv1D")

    def from_tflite(self, r, name, kind, op, ins, outs):
        return self.conv_from_tflite(r, name, op, ins, outs, depthwise=False)

    def from_keras(self, imp, layer, ins, outs, cfg):
        self.conv_from_keras(imp, layer, ins, outs, cfg, depthwise=False)

    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        w = g.tensors[op.inputs[1]]
        cin = g.tensors[op.inputs[0]].shape[3]
        if len(w.shape) != 4 or w.shape[3] != cin:
            raise UnsupportedError(op.name, f"conv2d weights {w.shape} for {cin} input channels "
                                            "(OHWI, no groups)")

    def output_shape(self, g, op):
        return window_output_shape(g, op, self.kernel_hw(g, op), self.out_channels(g, op))

    def kernel_hw(self, g, op) -> tuple[int, int]:
        w = g.tensors[op.inputs[1]]
        return w.shape[1], w.shape[2]

    def update_scratch(self, g, op, k):
        kh, kw = self.kernel_hw(g, op)
        return kh * kw * k

    def macs(self, g, op):
        _, kh, kw, cin = g.tensors[op.inputs[1]].shape
        return g.tensors[op.outputs[0]].size * kh * kw * cin

    def ref_s8(self, g, op, args):
        stride, pad, dil = geometry(op)
        out = g.tensors[op.outputs[0]]
        return conv2d_s8(hwc_of(args[0], op), args[1], args[2], stride, pad, dil,
                         self.params(g, op), out.shape[1:3])

    def ref_f16(self, g, op, args):
        stride, pad, dil = geometry(op)
        out = g.tensors[op.outputs[0]]
        fn = f16.conv2d_mve if self.helium(op) else f16.conv2d
        return fn(hwc_of(args[0], op), args[1], args[2], stride, pad, dil, self.attr(op, "activation"),
                  out.shape[1:3])

    def ref_f32(self, g, op, args):
        stride, pad, dil = geometry(op)
        out = g.tensors[op.outputs[0]]
        return conv2d_f32(hwc_of(args[0], op), args[1], args[2], stride, pad, dil,
                          self.attr(op, "activation"), out.shape[1:3])

    def simd_kernel(self, g, op):
        return "tt_conv2d_s8" if self.is_int8(g, op) else None

    def kernel_scratch_bytes(self, g, op):
        variant = op.attrs.get("variant")
        if self.helium(op):     # tt_conv2d_f16_mve: the weights of a block of outputs, tap-major
            kh, kw = self.kernel_hw(g, op)
            return f16.conv2d_f16_mve_scratch_bytes(kh, kw, g.tensors[op.inputs[0]].shape[3], self.out_channels(g, op))
        if not variant:
            return 0
        kh, kw = self.kernel_hw(g, op)
        return conv2d_scratch_bytes(variant, kh, kw, g.tensors[op.inputs[0]].shape[3], self.out_channels(g, op))

    def emit(self, em, op):
        g = em.graph
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        kh, kw = self.kernel_hw(g, op)
        head = [em.ptr(op.inputs[0]), em.dims(x), em.ptr(op.inputs[1]), em.ptr(op.inputs[2]), kh, kw, em.geom(op)]
        if x.dtype == "float16":
            tail = [em.kernel_scratch(op)] if self.helium(op) else []
            return [em.call(self.kernel_f16(em, op, "tt_conv2d_f16"), *head, ACT_CODES[self.attr(op, "activation")],
                            em.ptr(op.outputs[0]), em.dims(y), *tail)]
        if not self.is_int8(g, op):
            return [em.call(em.kernel("tt_conv2d_f32"), *head, ACT_CODES[self.attr(op, "activation")],
                            em.ptr(op.outputs[0]), em.dims(y))]
        q = self.params(g, op)
        fn = em.variant_kernel("tt_conv2d_s8", op)
        tail = [em.ptr(op.outputs[0]), em.dims(y)]
        if fn.endswith("_dsp"):     # the prepared requantisation table, and an im2col scratch
            return [em.call(fn, *head, em.requant(op, q), em.rq_dsp(op, q), *tail, em.kernel_scratch(op))]
        if fn.endswith("_mve"):
            return [em.call(fn, *head, em.requant(op, q), *tail, em.kernel_scratch(op))]
        return [em.call(fn, *head, em.requant(op, q), *tail)]

    # --- training ---------------------------------------------------------------------------
    def backward(self, x, w, dy, op, need_dx, k):
        stride, pad, dil = geometry(op)
        return conv2d_backward(x, w, dy, stride, pad, dil, need_dx, k)

    def backward_f16(self, x, w, dy, op, need_dx, k, x_shape):
        stride, pad, dil = geometry(op)
        dy = dy[0]
        mve = self.helium(op)
        gin = f16.conv2d_grad_input_mve if mve else f16.conv2d_grad_input
        gw = f16.conv2d_grad_weight_mve if mve else f16.conv2d_grad_weight
        dx = gin(dy, w, x_shape[1:3], stride, pad, dil)[None] if need_dx else None
        dw = gw(x[0], dy, w.shape[1], w.shape[2], stride, pad, dil, k)
        return dx, dw, f16.bias_grad(dy)

    def emit_grad_input(self, em, op, t, gy, gx, acc):
        shape = t.conv_shape(op, *self.kernel_hw(em.graph, op))
        w = em.ptr(op.inputs[1])
        if t.quantized:
            # the variants take the reference's arguments and give its floats: any board's best
            fn = em.kernel("tt_conv2d_grad_input_s8", allowed={"dsp": True, "mve": True})
            return [em.call(fn, shape, gy, w, t.weight_quant(op), acc, gx)]
        if t.half:
            return [em.call(self.kernel_f16(em, op, "tt_conv2d_grad_input_f16"), shape, gy, w, acc, gx)]
        return [em.call(em.kernel("tt_conv2d_grad_input_f32"), shape, gy, w, acc, gx)]

    def emit_weight_update(self, em, op, b, t, gy):
        g = em.graph
        kh, kw = self.kernel_hw(g, op)
        shape = t.conv_shape(op, kh, kw)
        w, ch, u = t.weight_update(op, b, self.out_channels(g, op) * kh * kw)
        x, scratch = t.saved_x(b, op), t.view(b.scratch)
        if t.quantized:
            # the variants take the reference's arguments (its scratch) and give its bytes
            fn = em.kernel("tt_conv2d_update_weight_s8", allowed={"dsp": True, "mve": True})
            return [em.call(fn, shape, ch, w, t.weight_quant(op), x,
                            t.act_quant(op.inputs[0]), gy, u, scratch)]
        if t.half:
            return [em.call(self.kernel_f16(em, op, "tt_conv2d_update_weight_f16"), shape, ch, w, x, gy, u,
                            scratch)]
        return [em.call(em.kernel("tt_conv2d_update_weight_f32"), shape, ch, w, x, gy, u, scratch)]


UNIT = Conv2D()
