"""fully_connected: y = x W^T + b. Inputs [x (1, I) or any shape of I elements, weight OI,
bias (O,)]; output (1, O). Attribute: activation. A Dense on a sequence (TFLite's
keep_num_dims: x (1, 1, T, I) -> (1, 1, T, O)) applies it to each of the T rows of I values
(in memory order, as TFLite; inference only: the training kernels take one row).

int8: LiteRT's reference FULLY_CONNECTED; per-channel weight scales rescale with a single
rounding (measured bit-exact in tests/test_refops_vs_litert.py).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..fixedpoint import add_bias_s32, clamp_s8, mul_by_quantized_multiplier_single_round, wrap32
from ..ir import ACT_CODES
from .weighted import WeightedOp
from . import f16
from .window import activate_f32


def fully_connected_s8(x, w, bias, q: dict) -> np.ndarray:
    """x (..., I) int8, w (O, I) int8 -> (..., O)."""
    acc = ((x.astype(np.float64) - q["in_zp"]) @ w.astype(np.float64).T).astype(np.int64)
    # the rescale's 64-bit result is cast to int32 (as LiteRT's and the C reference's), then
    # + out_zp and the clamp (the exact sum then the clamp: the C reference's saturating add)
    acc = wrap32(mul_by_quantized_multiplier_single_round(add_bias_s32(acc, bias), q["multiplier"], q["shift"]))
    acc = acc + q["out_zp"]
    return clamp_s8(acc, q["act_min"], q["act_max"])


def fully_connected_f32(x, w, bias, act) -> np.ndarray:
    y = x.reshape(-1, w.shape[1]).astype(np.float64) @ w.T.astype(np.float64)
    if bias is not None:
        y = y + bias
    return activate_f32(y.astype(np.float32), act)


def fully_connected_backward(x, w, dy, need_dx=True, k=None):
    """(dx, dW[:, :k], db) of y = x W^T + b on (1, I) / (1, O) arrays."""
    k = w.shape[1] if k is None else k
    x = x.reshape(1, -1)
    dy64 = dy.reshape(1, -1).astype(np.float64)
    dx = (dy64 @ w.astype(np.float64)).astype(np.float32) if need_dx else None
    dw = (dy64.T @ x[:, :k].astype(np.float64)).astype(np.float32)
    return dx, dw, dy64.sum(axis=0).astype(np.float32)


# The backward kernels' variants (fully_connected_backward_s8_dsp.c / _mve.c) take the
# reference's arguments: every board may run its best one.
SAME_ARGS = {"dsp": True, "mve": True}


class FullyConnected(WeightedOp):
    type = "fully_connected"
    summary = "fully connected (OI weights), fused relu/relu6"
    attrs = {"activation": "none"}
    weight_out_axis = 0
    weight_in_axis = 1
    classifier = True
    tflite_ops = ("FULLY_CONNECTED",)
    tflite_inputs = 2
    keras_layers = ("Dense",)

    def from_keras(self, imp, layer, ins, outs, cfg):
        x = imp.input(layer, ins[0])
        xshape = imp.tensors[x].shape
        if len(xshape) != 2 and not imp.is_sequence(ins[0]):
            raise UnsupportedError(layer.name, f"Dense on a rank-{len(ins[0].shape)} input "
                                               "(add a Flatten before it)")
        weights = imp.weights(layer)
        w = np.asarray(weights[0], np.float32).T         # IO -> OI
        bias = (np.asarray(weights[1], np.float32) if cfg.get("use_bias", True)
                else np.zeros(w.shape[0], np.float32))
        w_name = imp.new_tensor(f"{layer.name}.weight", w.shape, w)
        b_name = imp.new_tensor(f"{layer.name}.bias", bias.shape, bias)
        op = imp.emit(layer, self.type, [x, w_name, b_name], outs[0], {"activation": "none"},
                      shape=xshape[:-1] + (w.shape[0],))
        imp.fused_activation(layer, op, cfg, outs[0])

    def from_tflite(self, r, name, kind, op, ins, outs):
        from ..errors import TinyTrainError
        from ..ir import Op
        opts = r.options(op, r.s.FullyConnectedOptions)
        if opts is not None and opts.WeightsFormat() != 0:
            raise UnsupportedError(name, "shuffled fully-connected weights format")
        x = r.activation(name, ins[0])
        if len(r.shape(ins[1])) != 2:
            raise TinyTrainError(f"layer {name!r}: fully-connected weights of shape {r.shape(ins[1])}")
        cout, cin = r.shape(ins[1])
        xt = r.tensors[x]
        if xt.size % cin:                # TFLite: rows of cin values, in memory order
            raise UnsupportedError(name, f"fully connected over {r.shape(ins[0])} with {cin} inputs")
        w = r.weight(name, ins[1], r.tensors[x].dtype, axis=0)
        b = r.bias(name, ins[2] if len(ins) > 2 else -1, x, w, cout)
        rows = xt.size // cin            # the output shape, as TFLite computes it (a dynamic batch
        keep = opts is not None and opts.KeepNumDims()     # leaves the file's as a placeholder)
        y = r.activation(name, outs[0], computed_shape=(tuple(r.file_shapes[ins[0]][:-1]) + (cout,) if keep
                                                        else (rows, cout)))
        return Op(name, self.type, [x, w, b], [y], {"activation": r.fused(name, opts)})

    def check(self, g, op):
        super().check(g, op)
        x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        if len(w.shape) != 2 or x.size % w.shape[1]:
            raise UnsupportedError(op.name, f"fully connected weights {w.shape} on an input of "
                                            f"{x.shape}")
        if y.size != self.rows(g, op) * w.shape[0]:
            raise UnsupportedError(op.name, f"fully connected output {y.shape} for {self.rows(g, op)} "
                                            f"rows of {w.shape[0]}")

    def rows(self, g, op) -> int:
        """Rows the weights apply to: 1, or T for a Dense on a (1, 1, T, I) sequence."""
        return g.tensors[op.inputs[0]].size // g.tensors[op.inputs[1]].shape[1]

    def backward_unsupported(self, g, op):
        if self.rows(g, op) > 1:
            return (f"backward of a Dense applied to each of {self.rows(g, op)} rows of a sequence "
                    "(keep it in the frozen part)")
        return None

    def macs(self, g, op):
        w = g.tensors[op.inputs[1]]
        return int(w.shape[0] * w.shape[1]) * self.rows(g, op)

    def ref_s8(self, g, op, args):
        w = args[1]
        return fully_connected_s8(args[0].reshape(-1, w.shape[1]), w, args[2], self.params(g, op))

    def ref_f16(self, g, op, args):
        w = args[1]
        fn = f16.fully_connected_mve if self.helium(op) else f16.fully_connected
        rows = [fn(r, w, args[2], self.attr(op, "activation"))
                for r in np.asarray(args[0]).reshape(-1, w.shape[1])]
        return np.stack(rows)

    def backward_f16(self, x, w, dy, op, need_dx, k, x_shape):
        gin = f16.fully_connected_grad_input_mve if self.helium(op) else f16.fully_connected_grad_input
        dx = gin(dy, w).reshape(x_shape) if need_dx else None
        return dx, f16.fully_connected_grad_weight(x, dy, k), f16.bias_grad(dy.reshape(1, -1))

    def ref_f32(self, g, op, args):
        return fully_connected_f32(args[0], args[1], args[2], self.attr(op, "activation"))

    def simd_kernel(self, g, op):
        return "tt_fully_connected_s8" if self.is_int8(g, op) else None    # same arguments

    def emit(self, em, op):
        g = em.graph
        w = g.tensors[op.inputs[1]]
        fn, last = self.forward_kernel(em, op, "tt_fully_connected")
        out_f, in_f = int(w.shape[0]), int(w.shape[1])
        rows = self.rows(g, op)
        if rows == 1:
            return [em.call(fn, em.ptr(op.inputs[0]), in_f, em.ptr(op.inputs[1]), em.ptr(op.inputs[2]),
                            out_f, last, em.ptr(op.outputs[0]))]
        from ..cgen.cformat import CExpr     # a Dense on a sequence: the same weights on each row
        x, y = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
        call = em.call(fn, CExpr(f"{x} + r * {in_f}"), in_f, em.ptr(op.inputs[1]), em.ptr(op.inputs[2]),
                       out_f, last, CExpr(f"{y} + r * {out_f}"))
        return [f"for (int32_t r = 0; r < {rows}; ++r) {{ {call} }}"]

    def backward(self, x, w, dy, op, need_dx, k):
        dx, dw, db = fully_connected_backward(x, w, dy, need_dx, k)
        return (None if dx is None else dx.reshape(x.shape)), dw, db

    def emit_grad_input(self, em, op, t, gy, gx, acc):
        out_f, in_f = em.graph.tensors[op.inputs[1]].shape
        w = em.ptr(op.inputs[1])
        if t.quantized:
            # the variants take the reference's arguments and give its floats: any board's best
            fn = em.kernel("tt_fully_connected_grad_input_s8", allowed=SAME_ARGS)
            return [em.call(fn, in_f, out_f, gy, w, t.weight_quant(op), acc, gx)]
        if t.half:
            return [em.call(self.kernel_f16(em, op, "tt_fully_connected_grad_input_f16"), in_f, out_f, gy, w,
                            acc, gx)]
        return [em.call(em.kernel("tt_fully_connected_grad_input_f32"), in_f, out_f, gy, w, acc, gx)]

    def emit_weight_update(self, em, op, b, t, gy):
        out_f = em.graph.tensors[op.inputs[1]].shape[0]
        w, ch, u = t.weight_update(op, b, out_f)
        x = t.saved_x(b, op)
        if t.quantized:     # the variant (the reference's arguments and bytes; _dsp on the Cortex-M55 too)
            fn = em.kernel("tt_fully_connected_update_weight_s8", allowed=SAME_ARGS)
            return [em.call(fn, out_f, ch, w, t.weight_quant(op), x, t.act_quant(op.inputs[0]), gy, u)]
        if t.half:
            return [em.call(self.kernel_f16(em, op, "tt_fully_connected_update_weight_f16"), out_f, ch, w, x, gy,
                            u)]
        return [em.call(em.kernel("tt_fully_connected_update_weight_f32"), out_f, ch, w, x, gy, u)]


UNIT = FullyConnected()
