"""What conv2d, depthwise_conv2d and fully_connected share: inputs [x, weight, bias], an int8
requantization per output channel, and trainable parameters.

A subclass gives its layout (`weight_out_axis`, `weight_in_axis`), its references, its
forward emission and `backward` (numpy dx, dW, db); the training facts and the VJP that
selects trained channels live here once.
"""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from .base import OpUnit, same_dtype


class WeightedOp(OpUnit):
    weighted = True
    float16 = True
    weight_out_axis = 0
    weight_in_axis = -1

    def check(self, g, op):
        super().check(g, op)
        if len(op.inputs) != 3:
            raise UnsupportedError(op.name, f"{op.type} with {len(op.inputs)} inputs (x, weight, bias)")
        same_dtype(g, op)
        w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
        if not (w.is_const and b.is_const):
            raise UnsupportedError(op.name, f"{op.type} with non-constant weight or bias")
        x = g.tensors[op.inputs[0]]
        want_b = {"int8": "int32", "float16": "float16"}.get(x.dtype, "float32")
        if w.dtype != x.dtype or b.dtype != want_b:
            raise UnsupportedError(op.name, f"{op.type} with {w.dtype} weights and {b.dtype} bias "
                                            f"on {x.dtype} activations")
        if b.shape != (self.out_channels(g, op),):
            raise UnsupportedError(op.name, f"bias of shape {b.shape} for {self.out_channels(g, op)} channels")

    def out_channels(self, g, op) -> int:
        return g.tensors[op.inputs[1]].shape[self.weight_out_axis]

    def in_channels(self, g, op) -> int:
        """Input channels of the weight (the axis a partial update trains a prefix of)."""
        return g.tensors[op.inputs[1]].shape[self.weight_in_axis]

    def params(self, g, op):
        return quant.conv_requant(g, op, self.out_channels(g, op))

    def requant_table_bytes(self, g, op) -> int:
        return 8 * self.out_channels(g, op) if self.is_int8(g, op) else 0

    def update_scratch(self, g, op, k: int) -> int:
        """Floats of scratch the fused weight update needs: one output channel's weight
        gradient over k trained input channels (0: none)."""
        return 0

    def clamp(self, g, op):
        p = self.params(g, op)
        return int(p["act_min"]), int(p["act_max"])

    def conv_from_tflite(self, r, name, op, ins, outs, depthwise: bool):
        """CONV_2D / DEPTHWISE_CONV_2D: OHWI weights (depthwise 1HWC -> HWC, per-channel axis
        3 -> 2), SAME/VALID padding made explicit as TFLite computes it."""
        from ..frontends.tflite import at_least_one, tflite_padding
        s = r.s
        opts = r.required_options(name, op, s.DepthwiseConv2DOptions if depthwise else s.Conv2DOptions)
        x = r.activation(name, ins[0])
        xt = r.tensors[x]
        if len(xt.shape) != 4:
            raise UnsupportedError(name, f"convolution of a rank-{len(xt.shape)} input")
        _, h, w_in, cin = xt.shape
        w_shape = r.shape(ins[1])
        if len(w_shape) != 4:
            from ..errors import TinyTrainError
            raise TinyTrainError(f"layer {name!r}: rank-{len(w_shape)} convolution weights {w_shape}")
        if depthwise:
            if opts.DepthMultiplier() not in (0, 1) or w_shape[3] != cin:
                raise UnsupportedError(name, f"depth multiplier {max(opts.DepthMultiplier(), w_shape[3] // cin)}"
                                             " (1 only)")
            kh, kw, cout = w_shape[1], w_shape[2], w_shape[3]
            w = r.weight(name, ins[1], xt.dtype, axis=2, reshape=(kh, kw, cout))
        else:
            cout, kh, kw, wcin = w_shape
            if wcin != cin:
                raise UnsupportedError(name, f"groups ({cin} input channels, filters of {wcin})")
            w = r.weight(name, ins[1], xt.dtype, axis=0)
        b = r.bias(name, ins[2] if len(ins) > 2 else -1, x, w, cout)
        valid = opts.Padding() == s.Padding.VALID
        sh, sw = opts.StrideH(), opts.StrideW()
        dh, dw = opts.DilationHFactor(), opts.DilationWFactor()
        at_least_one(name, stride=(sh, sw), dilation=(dh, dw), kernel=(kh, kw))
        pt, pb = tflite_padding(valid, h, kh, sh, dh)
        pl, pr = tflite_padding(valid, w_in, kw, sw, dw)
        attrs = {"stride": (sh, sw), "pad": (pt, pb, pl, pr), "dilation": (dh, dw),
                 "activation": r.fused(name, opts)}
        y = r.activation(name, outs[0])
        from ..ir import Op
        return Op(name, self.type, [x, w, b], [y], attrs)

    def conv_from_keras(self, imp, layer, ins, outs, cfg, depthwise: bool) -> None:
        """Keras Conv2D / DepthwiseConv2D: HWIO -> OHWI (depthwise HWC1 -> HWC), SAME padding
        made explicit, the layer's activation fused or appended."""
        import numpy as np
        imp.check_channels_last(layer, cfg)
        if imp.is_sequence(ins[0]):      # Conv1D / DepthwiseConv1D: H = 1, a (1, k) kernel
            cfg = dict(cfg, strides=(1,) + tuple(cfg["strides"]),
                       dilation_rate=(1,) + tuple(cfg.get("dilation_rate", (1,))))
        if cfg.get("groups", 1) != 1:
            raise UnsupportedError(layer.name, f"groups {cfg['groups']}")
        strides = tuple(cfg["strides"])
        dilation = tuple(cfg.get("dilation_rate", (1, 1)))
        if dilation != (1, 1) and strides != (1, 1):
            raise UnsupportedError(layer.name, f"dilation_rate {dilation} with strides {strides}")
        x = imp.input(layer, ins[0])
        xshape = imp.tensors[x].shape
        if len(xshape) != 4:
            raise UnsupportedError(layer.name, f"convolution of a rank-{len(xshape)} input")
        weights = imp.weights(layer)
        kernel = np.asarray(weights[0], np.float32)
        if kernel.ndim == 3:             # a 1-D kernel (k, in, out): one row of a 2-D one
            kernel = kernel[None]
        kh, kw = kernel.shape[:2]
        if depthwise:
            if kernel.shape[3] != 1:
                raise UnsupportedError(layer.name, f"depth_multiplier {kernel.shape[3]} (1 only)")
            w = kernel[:, :, :, 0]                       # (kh, kw, C, 1) -> HWC
            cout = w.shape[2]
        else:
            w = kernel.transpose(3, 0, 1, 2)             # HWIO -> OHWI
            cout = w.shape[0]
        bias = (np.asarray(weights[1], np.float32) if cfg.get("use_bias", True) else np.zeros(cout, np.float32))
        pad = imp.conv_padding(layer, cfg, xshape[1:3], (kh, kw), strides, dilation)
        w_name = imp.new_tensor(f"{layer.name}.weight", w.shape, w)
        b_name = imp.new_tensor(f"{layer.name}.bias", bias.shape, bias)
        op = imp.emit(layer, self.type, [x, w_name, b_name], outs[0],
                      {"stride": strides, "pad": pad, "dilation": dilation, "activation": "none"})
        imp.fused_activation(layer, op, cfg, outs[0])

    def backward(self, x, w, dy, op, need_dx: bool, k: int):
        """(dx or None, dW over input channels [0, k), db) on real (float32) values."""
        raise NotImplementedError

    def backward_f16(self, x, w, dy, op, need_dx: bool, k: int, x_shape):
        """The same for a float16 layer, bit for bit as its _f16 kernels: float32 sums
        before their rounding (tinytrain/ops/f16.py); dx the input gradient's sums."""
        raise NotImplementedError

    def forward_kernel(self, em, op, base: str):
        """(kernel, last argument) of the forward: int8 (requantization), float16 or float32
        (activation code); a Helium float16 variant where the layer was given one."""
        g = em.graph
        dt = g.tensors[op.inputs[0]].dtype
        if dt == "int8":     # the variant select_kernels chose, where it takes the reference's arguments
            return em.variant_kernel(f"{base}_s8", op), em.requant(op, self.params(g, op))
        from ..ir import ACT_CODES
        if dt == "float16":
            return self.kernel_f16(em, op, f"{base}_f16"), ACT_CODES[self.attr(op, "activation")]
        return em.kernel(f"{base}_f32"), ACT_CODES[self.attr(op, "activation")]

    def helium(self, op) -> bool:
        """The layer runs the Helium float16 variants (its numpy reference models them)."""
        return op.attrs.get("f16_variant") == "mve"

    def kernel_f16(self, em, op, name: str) -> str:
        """A float16 kernel: the Helium variant where the compiler chose it for this layer
        (op.attrs["f16_variant"] == "mve", tinytrain.precision), else the portable one."""
        return em.kernel(name, allowed={"mve": op.attrs.get("f16_variant") == "mve"})

    def vjp(self, ctx, op, dy, step):
        """Input gradient and the trained parameters' gradients of one backward step.

        Returns ({activation: dx}, {param: grad}); a partial update's weight gradient covers
        the trained input channels only (the first k, or those of the channel index)."""
        g = ctx.graph
        need = list(step.grad_inputs)
        index = step.channel_index()
        full = self.in_channels(g, op)
        k = step.trained_in_channels(full) if step.computes_weight_grad else 1
        if index is not None:        # listed channels: all gradients, then keep those
            k = full
        x = ctx.real(op.inputs[0])
        w = ctx.real(op.inputs[1])
        need_dx = op.inputs[0] in need
        if g.tensors[op.inputs[0]].dtype == "float16":
            dx, dw, db = self.backward_f16(x, w, dy, op, need_dx, k, x.shape)
        else:
            dx, dw, db = self.backward(x, w, dy, op, need_dx, k)
        grads = {}
        if step.computes_weight_grad:
            grads[op.inputs[1]] = dw[..., index] if index is not None else dw
        if step.computes_bias_grad:
            grads[op.inputs[2]] = db
        return ({op.inputs[0]: dx} if need_dx else {}), grads

    # --- C backward ---------------------------------------------------------------------------
    def emit_backward(self, em, op, b, t) -> list[str]:
        """Input gradient with the OLD weights, then the in-place weight update (one output
        channel at a time, through scratch), then the bias update (`t`: the training
        emission context, tinytrain.training.emit)."""
        gy = t.grad(b.grad_out)
        lines = []
        x = op.inputs[0]
        if x in b.grad_inputs:
            lines += self.emit_grad_input(em, op, t, gy, t.grad(b.grad_inputs[x]), t.acc(b, x))
        if b.computes_weight_grad:
            lines += self.emit_weight_update(em, op, b, t, gy)
        if b.computes_bias_grad:
            lines.append(t.bias_update(op, gy))
        return lines

    def emit_grad_input(self, em, op, t, gy, gx, acc) -> list[str]:
        raise NotImplementedError

    def emit_weight_update(self, em, op, b, t, gy) -> list[str]:
        raise NotImplementedError
