"""Host simulation of the training step of a TrainingProgram, in numpy.

Float graphs: fp32 forward and backward (checked against TensorFlow's GradientTape).
int8 graphs: the int8 forward of inference (tinytrain.refops, bit-exact with the C
kernels), fp32 gradients w.r.t. real (dequantized) values with requantization treated
as identity and the int8 clamp as a mask, and quantization-aware-scaled updates of the
int8 weights / int32 biases (see qas.py). Updates follow the program's in-place order:
each layer's input gradient uses its old weights, then its parameters are updated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import TinyTrainError
from ..ir import Op
from . import qas, vjp
from .program import TrainingProgram, trained_in_channels

F32 = np.float32


@dataclass
class StepResult:
    loss: float
    grads: dict[str, np.ndarray] = field(default_factory=dict)        # param -> real-valued gradient (trained part)
    input_grads: dict[str, np.ndarray] = field(default_factory=dict)  # activation -> its gradient


class Trainer:
    """Parameters and optimizer state of a program, trained one sample at a time."""

    def __init__(self, prog: TrainingProgram, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        prog.check_momentum(momentum)
        self.prog = prog
        self.g = prog.graph
        self.lr, self.momentum, self.weight_decay = F32(lr), F32(momentum), F32(weight_decay)
        self.params = {t.name: t.data.copy() for t in self.g.constants()}
        self.state: dict[str, np.ndarray] = {}          # momentum buffers
        # update state of int8/int32 parameters (qas.py), per parameter's trained part
        self.shadow: dict[str, np.ndarray] = {}         # "shadow": fp32 copies
        self.residual: dict[str, np.ndarray] = {}       # "residual": int8 fractions (1/256)
        self.rng_state = prog.update_seed               # "stochastic": the PRNG's state
        self.ops = {op.name: op for op in self.g.ops}

    def reset_optimizer(self) -> None:
        """As tt_model_reset_optimizer: momentum zeroed, shadows and residuals re-derived from
        the parameters (after the parameters were written); the PRNG stream goes on."""
        self.state.clear()
        self.shadow.clear()
        self.residual.clear()

    # --- forward --------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every activation of the forward pass (int8 graphs: their int8 values)."""
        inp = self.g.tensors[self.g.inputs[0]]
        vals = {inp.name: np.asarray(x).astype(inp.dtype if inp.dtype != "float32" else F32).reshape(inp.shape)}
        fwd = self._forward_s8 if self.prog.quantized else self._forward_f32
        for op in self.g.ops:
            vals[op.outputs[0]] = fwd(op, vals).reshape(self.g.tensors[op.outputs[0]].shape)
        return vals

    def _forward_s8(self, op: Op, vals) -> np.ndarray:
        """The int8 inference kernels (numpy references, bit-exact with the C ones)."""
        from .. import quant, refops
        g, a = self.g, op.attrs
        x = vals[op.inputs[0]]
        out = g.tensors[op.outputs[0]]
        hwc = x.reshape(x.shape[1:]) if x.ndim == 4 else x
        if op.type in ("conv2d", "depthwise_conv2d"):
            f = refops.conv2d_s8 if op.type == "conv2d" else refops.depthwise_conv2d_s8
            return f(hwc, self.params[op.inputs[1]], self.params[op.inputs[2]], a["stride"], a["pad"],
                     a.get("dilation", (1, 1)), quant.conv_requant(g, op), out.shape[1:3])
        if op.type == "fully_connected":
            return refops.fully_connected_s8(x, self.params[op.inputs[1]], self.params[op.inputs[2]],
                                             quant.conv_requant(g, op))
        if op.type == "add":
            return refops.add_s8(x, vals[op.inputs[1]], quant.add_params(g, op))
        if op.type in ("avg_pool2d", "max_pool2d"):
            p = quant.pool_params(g, op)
            f = refops.avg_pool2d_s8 if op.type == "avg_pool2d" else refops.max_pool2d_s8
            return f(hwc, a["kernel"], a["stride"], a["pad"], p["act_min"], p["act_max"], out.shape[1:3])
        if op.type == "global_avg_pool":
            return refops.global_avg_pool_s8(hwc, quant.global_avg_pool_params(g, op))
        if op.type in ("relu", "relu6"):
            return refops.relu_s8(x, quant.relu_params(g, op))
        if op.type == "reshape":
            return x
        if op.type == "softmax":
            return refops.softmax_s8(x.reshape(-1, x.shape[-1]), quant.softmax_params(g, op))
        if op.type == "pad":
            return refops.pad_s8(hwc, a["pad"], quant.pad_value(g, op))
        if op.type == "pointwise_depthwise_conv2d":     # memory pass, frozen part only
            return refops.run_op(g, op, [x, *(self.params[t] for t in op.inputs[1:])]).reshape(out.shape[1:])
        raise TinyTrainError(f"layer {op.name!r}: {op.type} in an int8 training graph")

    def _forward_f32(self, op: Op, vals) -> np.ndarray:
        a = op.attrs
        x = vals[op.inputs[0]]
        out = self.g.tensors[op.outputs[0]]
        act = a.get("activation", "none")
        if op.type in ("conv2d", "depthwise_conv2d"):
            w, b = self.params[op.inputs[1]], self.params[op.inputs[2]]
            f = vjp.conv2d if op.type == "conv2d" else vjp.depthwise_conv2d
            y = f(x, w, b, a["stride"], a["pad"], a.get("dilation", (1, 1)), out.shape[1:3])
        elif op.type == "fully_connected":
            y = vjp.fully_connected(x, self.params[op.inputs[1]], self.params[op.inputs[2]])
        elif op.type == "add":
            y = (x + vals[op.inputs[1]]).astype(F32)
        elif op.type in ("avg_pool2d", "max_pool2d"):
            y = vjp.pool2d(x, a["kernel"], a["stride"], a["pad"], out.shape[1:3], op.type[:3])
        elif op.type == "global_avg_pool":
            y = x.astype(np.float64).mean(axis=(1, 2), keepdims=True).astype(F32)
        elif op.type in ("relu", "relu6"):
            y, act = x, op.type
        elif op.type == "reshape":
            y = x.reshape(out.shape)
        elif op.type == "softmax":
            y = vjp.softmax(x, a.get("beta", 1.0))
        elif op.type == "pad":
            y = vjp._pad(x, a["pad"])
        else:
            raise TinyTrainError(f"layer {op.name!r}: {op.type} in a float training graph")
        return vjp.activation(y, act)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[self.g.outputs[0]]

    # --- one step -------------------------------------------------------------------------
    def real(self, name: str, vals) -> np.ndarray:
        """Real value of an activation or parameter (dequantized for int8 graphs)."""
        t = self.g.tensors[name]
        v = vals[name] if name in vals else self.params[name]
        if t.quant is None or t.dtype == "float32":
            return np.asarray(v, F32)
        shape = [1] * v.ndim
        if t.quant.per_channel:
            shape[t.quant.axis] = -1
        s = t.quant.scale.reshape(shape)
        z = t.quant.zero_point.reshape(shape)
        return ((v.astype(np.float64) - z) * s).astype(F32)

    def mask(self, op: Op, vals) -> np.ndarray:
        y = vals[op.outputs[0]]
        if self.prog.quantized:
            lo, hi = qas.clamp_range(self.g, op)
            return (y > lo) & (y < hi)
        act = op.type if op.type in ("relu", "relu6") else op.attrs.get("activation", "none")
        return vjp.activation_mask(y, act)

    def step(self, x: np.ndarray, label: int, target: np.ndarray | None = None) -> StepResult:
        prog, g = self.prog, self.g
        vals = self.forward(x)
        ls = prog.loss_step
        lt = g.tensors[ls.logits]
        if prog.loss == "softmax_cross_entropy" and lt.dtype == "int8":
            loss, dlogits = vjp.softmax_cross_entropy_s8(vals[ls.logits], F32(lt.scale), label)
            dlogits = dlogits.reshape(lt.shape)
        elif prog.loss == "softmax_cross_entropy":
            loss, dlogits = vjp.softmax_cross_entropy(self.real(ls.logits, vals), label)
        else:
            loss, dlogits = vjp.mse(self.real(ls.logits, vals), label)
        res = StepResult(loss)
        grads = {ls.logits: dlogits}
        for b in prog.backward:
            op = self.ops[b.op]
            dy = grads.pop(op.outputs[0])
            if b.mask:
                dy = np.where(self.mask(op, vals), dy, F32(0)).astype(F32)
            dxs, dw, db = self._backward(op, b, dy, vals)
            for t, dx in dxs.items():
                grads[t] = grads[t] + dx if b.accumulate[t] else dx
                res.input_grads[t] = grads[t]
            if b.update is not None:
                if b.update.weight:
                    res.grads[op.inputs[1]] = dw
                    self._update(op, op.inputs[1], dw, b)
                if b.update.bias:
                    res.grads[op.inputs[2]] = db
                    self._update(op, op.inputs[2], db, b)
        return res

    def _backward(self, op: Op, b, dy, vals):
        a = op.attrs
        need = list(b.grad_inputs)
        dxs: dict[str, np.ndarray] = {}
        dw = db = None
        if op.type in ("conv2d", "depthwise_conv2d", "fully_connected"):
            index = _channel_index(b)
            k = trained_in_channels(self.g, op, b.update) if b.computes_weight_grad else 1
            if index is not None:       # listed channels: all gradients, then keep those
                k = self.g.tensors[op.inputs[1]].shape[-1]
            x = self.real(op.inputs[0], vals)
            w = self.real(op.inputs[1], {})
            need_dx = op.inputs[0] in need
            if op.type == "fully_connected":
                dx, dw, db = vjp.fully_connected_backward(x, w, dy, need_dx, k)
            else:
                f = vjp.conv2d_backward if op.type == "conv2d" else vjp.depthwise_conv2d_backward
                dx, dw, db = f(x, w, dy, a["stride"], a["pad"], a.get("dilation", (1, 1)), need_dx, k)
            if need_dx:
                dxs[op.inputs[0]] = dx
            if index is not None and dw is not None:
                dw = dw[..., index]
        elif op.type == "add":
            for t in need:
                dxs[t] = dy
        elif op.type in ("avg_pool2d", "max_pool2d"):
            if need:
                x = self.real(op.inputs[0], vals)
                dxs[need[0]] = vjp.pool2d_backward(x, dy, a["kernel"], a["stride"], a["pad"], op.type[:3])
        elif op.type == "global_avg_pool":
            if need:
                x = self.g.tensors[op.inputs[0]]
                dxs[need[0]] = np.broadcast_to(dy / F32(x.shape[1] * x.shape[2]), x.shape).astype(F32)
        elif op.type in ("relu", "relu6", "quantize", "dequantize"):
            if need:
                dxs[need[0]] = dy
        elif op.type == "reshape":
            if need:
                dxs[need[0]] = dy.reshape(self.g.tensors[op.inputs[0]].shape)
        elif op.type == "softmax":
            if need:
                dxs[need[0]] = vjp.softmax_backward(self.real(op.outputs[0], vals), dy, a.get("beta", 1.0))
        elif op.type == "pad":
            if need:
                dxs[need[0]] = vjp.pad_backward(dy, a["pad"])
        else:
            raise TinyTrainError(f"layer {op.name!r}: no backward rule for {op.type}")
        return dxs, dw, db

    def _update(self, op: Op, name: str, grad: np.ndarray, b) -> None:
        t = self.g.tensors[name]
        p = self.params[name]
        k = grad.shape[-1]
        index = _channel_index(b) if name == op.inputs[1] else None
        # the trained input channels: the first k, or the listed ones (reorder fallback)
        sub = (Ellipsis, slice(0, k)) if index is None else (Ellipsis, index)
        if self.prog.quantized:
            qas.update_int(self, op, name, p, grad, sub)
            return
        cur = p[sub]
        g = grad.astype(F32)
        if self.weight_decay:
            g = (g + self.weight_decay * cur).astype(F32)
        if self.momentum:
            m = self.state.setdefault(name, np.zeros_like(g))
            m[...] = (self.momentum * m + g).astype(F32)
            g = m
        p[sub] = (cur - self.lr * g).astype(F32)
        del t


def _channel_index(b) -> np.ndarray | None:
    """The explicit input channels a layer's weight update trains, if the scheme lists them."""
    u = b.update
    if u is None or not b.computes_weight_grad or u.channel_index is None:
        return None
    return np.asarray(u.channel_index, dtype=np.int64)
