"""fully_connected: y = x W^T + b. Inputs [x (1, I) or any shape of I elements, weight OI,
bias (O,)]; output (1, O). Attribute: activation.

int8: LiteRT's reference FULLY_CONNECTED; per-channel weight scales rescale with a single
rounding (measured bit-exact in tests/test_refops_vs_litert.py).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..fixedpoint import clamp_s8, mul_by_quantized_multiplier_single_round, wrap32
from ..ir import ACT_CODES
from .weighted import WeightedOp
from .window import activate_f32


def fully_connected_s8(x, w, bias, q: dict) -> np.ndarray:
    """x (..., I) int8, w (O, I) int8 -> (..., O)."""
    acc = ((x.astype(np.float64) - q["in_zp"]) @ w.astype(np.float64).T).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    acc = mul_by_quantized_multiplier_single_round(wrap32(acc), q["multiplier"], q["shift"]) + q["out_zp"]
    return clamp_s8(acc, q["act_min"], q["act_max"])


def fully_connected_f32(x, w, bias, act) -> np.ndarray:
    y = x.reshape(1, -1).astype(np.float64) @ w.T.astype(np.float64)
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
        if len(imp.tensors[x].shape) != 2:
            raise UnsupportedError(layer.name, f"Dense on a rank-{len(imp.tensors[x].shape)} input "
                                               "(add a Flatten before it)")
        weights = imp.weights(layer)
        w = np.asarray(weights[0], np.float32).T         # IO -> OI
        bias = (np.asarray(weights[1], np.float32) if cfg.get("use_bias", True)
                else np.zeros(w.shape[0], np.float32))
        w_name = imp.new_tensor(f"{layer.name}.weight", w.shape, w)
        b_name = imp.new_tensor(f"{layer.name}.bias", bias.shape, bias)
        op = imp.emit(layer, self.type, [x, w_name, b_name], outs[0], {"activation": "none"},
                      shape=(1, w.shape[0]))
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
        if r.tensors[x].size != cin:
            raise UnsupportedError(name, f"fully connected over {r.tensors[x].shape} with {cin} inputs "
                                         "(batch 1 only)")
        w = r.weight(name, ins[1], r.tensors[x].dtype, axis=0)
        b = r.bias(name, ins[2] if len(ins) > 2 else -1, x, w, cout)
        y = r.activation(name, outs[0])
        return Op(name, self.type, [x, w, b], [y], {"activation": r.fused(name, opts)})

    def check(self, g, op):
        super().check(g, op)
        x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        if len(w.shape) != 2 or x.size != w.shape[1]:
            raise UnsupportedError(op.name, f"fully connected weights {w.shape} on an input of "
                                            f"{x.size} values")

    def macs(self, g, op):
        w = g.tensors[op.inputs[1]]
        return int(w.shape[0] * w.shape[1])

    def ref_s8(self, g, op, args):
        return fully_connected_s8(args[0].reshape(1, -1), args[1], args[2], self.params(g, op))

    def ref_f32(self, g, op, args):
        return fully_connected_f32(args[0], args[1], args[2], self.attr(op, "activation"))

    def emit(self, em, op):
        g = em.graph
        w = g.tensors[op.inputs[1]]
        if self.is_int8(g, op):
            fn, last = em.kernel("tt_fully_connected_s8"), em.requant(op, self.params(g, op))
        else:
            fn, last = em.kernel("tt_fully_connected_f32"), ACT_CODES[self.attr(op, "activation")]
        return [em.call(fn, em.ptr(op.inputs[0]), int(w.shape[1]), em.ptr(op.inputs[1]), em.ptr(op.inputs[2]),
                        int(w.shape[0]), last, em.ptr(op.outputs[0]))]

    def backward(self, x, w, dy, op, need_dx, k):
        dx, dw, db = fully_connected_backward(x, w, dy, need_dx, k)
        return (None if dx is None else dx.reshape(x.shape)), dw, db

    def emit_grad_input(self, em, op, t, gy, gx, acc):
        out_f, in_f = em.graph.tensors[op.inputs[1]].shape
        w = em.ptr(op.inputs[1])
        if t.quantized:
            return [em.call(em.kernel("tt_fully_connected_grad_input_s8"), in_f, out_f, gy, w, t.weight_quant(op),
                            acc, gx)]
        return [em.call(em.kernel("tt_fully_connected_grad_input_f32"), in_f, out_f, gy, w, acc, gx)]

    def emit_weight_update(self, em, op, b, t, gy):
        out_f = em.graph.tensors[op.inputs[1]].shape[0]
        w, ch, u = t.weight_update(op, b, out_f)
        x = t.saved_x(b, op)
        if t.quantized:
            return [em.call(em.kernel("tt_fully_connected_update_weight_s8"), out_f, ch, w, t.weight_quant(op), x,
                            t.act_quant(op.inputs[0]), gy, u)]
        return [em.call(em.kernel("tt_fully_connected_update_weight_f32"), out_f, ch, w, x, gy, u)]


UNIT = FullyConnected()
