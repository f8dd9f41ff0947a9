"""Host simulation of the training step of a TrainingProgram, in numpy.

Float graphs: fp32 forward and backward (checked against TensorFlow's GradientTape).
Half-precision graphs (precision fp16 / mixed): the op units' float16 references
(tinytrain/ops/f16.py), bit for bit as the _f16 kernels: gradients rounded to half where the
C stores them, updates by tt_sgd_rule_f16 (loss scale, fp32 master copy, dynamic overflow).
int8 graphs: the int8 forward of inference (tinytrain.refops, bit-exact with the C
kernels), fp32 gradients w.r.t. real (dequantized) values with requantization treated
as identity and the int8 clamp as a mask, and quantization-aware-scaled updates of the
int8 weights / int32 biases (see qas.py). Updates follow the program's in-place order:
each layer's input gradient uses its old weights, then its parameters are updated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Op
from ..ops import unit
from ..ops import f16
from . import qas, vjp
from .program import TrainingProgram

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
        self._vals: dict[str, np.ndarray] = {}
        # half precision: the fp32 master copies (mixed) and the loss scale's state
        self.master: dict[str, np.ndarray] = {}
        self.loss_scale_value = F32(prog.loss_scale)
        self.loss_scale_good_steps = 0
        self.overflow = False

    def reset_optimizer(self) -> None:
        """As tt_model_reset_optimizer: momentum zeroed, shadows and residuals re-derived from
        the parameters (after the parameters were written); the PRNG stream goes on."""
        self.state.clear()
        self.shadow.clear()
        self.master.clear()
        self.residual.clear()

    # --- forward --------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every activation of the forward pass (int8 graphs: their int8 values), computed
        with the op units' references on the current parameters."""
        inp = self.g.tensors[self.g.inputs[0]]
        vals = {inp.name: np.asarray(x).astype(inp.dtype).reshape(inp.shape)}
        for op in self.g.ops:
            args = [vals[t] if t in vals else self.params[t] for t in op.inputs]
            vals[op.outputs[0]] = unit(op.type).run(self.g, op, args)
        return vals

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[self.g.outputs[0]]

    # --- one step -------------------------------------------------------------------------
    def real(self, name: str, vals=None) -> np.ndarray:
        """Real value of an activation or parameter (dequantized for int8 graphs)."""
        t = self.g.tensors[name]
        vals = self._vals if vals is None else vals
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
        """The derivative of the output's clamp (int8) or activation (float): 1-bit masks."""
        y = vals[op.outputs[0]]
        u = unit(op.type)
        if self.prog.quantized:
            lo, hi = u.clamp(self.g, op)
            return (y > lo) & (y < hi)
        return vjp.activation_mask(y, u.activation(op))

    def step(self, x: np.ndarray, label: int, target: np.ndarray | None = None) -> StepResult:
        prog = self.prog
        vals = self.forward(x)
        self._vals = vals
        ls = prog.loss_step
        lt = self.g.tensors[ls.logits]
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
                dy = np.where(self.mask(op, vals), dy, dy.dtype.type(0)).astype(dy.dtype)
            dxs, pgrads = unit(op.type).vjp(self, op, dy, b)
            for t, dx in dxs.items():
                dx = np.asarray(dx, F32).reshape(self.g.tensors[t].shape)
                if self.g.tensors[t].dtype == "float16":      # the _f16 kernels' one rounding
                    grads[t] = f16.round_grad(dx, grads[t] if b.accumulate[t] else None)
                else:
                    grads[t] = grads[t] + dx if b.accumulate[t] else dx
                res.input_grads[t] = grads[t]
            for name, grad in pgrads.items():       # the weight first, then the bias
                res.grads[name] = grad
                self._update(op, name, grad, b)
        if prog.half:
            self._after_step()
        return res

    @property
    def graph(self):
        return self.g

    def _update(self, op: Op, name: str, grad: np.ndarray, b) -> None:
        t = self.g.tensors[name]
        p = self.params[name]
        k = grad.shape[-1]
        index = b.channel_index() if name == op.inputs[1] else None
        # the trained input channels: the first k, or the listed ones (reorder fallback)
        sub = (Ellipsis, slice(0, k)) if index is None else (Ellipsis, index)
        if self.prog.quantized:
            qas.update_int(self, op, name, p, grad, sub)
            return
        if self.prog.half:
            self._update_half(op, name, p, grad, sub)
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

    # --- half precision ---------------------------------------------------------------------
    def _update_half(self, op: Op, name: str, p: np.ndarray, grad: np.ndarray, sub) -> None:
        """tt_sgd_rule_f16 over the trained elements, in the order the C kernel visits them:
        with dynamic loss scaling, from the first non-finite gradient on nothing changes."""
        cur = p[sub]
        g = np.asarray(grad, F32)
        allowed = np.ones(g.shape, bool)
        if self.prog.dynamic_loss_scale:
            if self.overflow:
                return
            bad = ~np.isfinite(g)
            if bad.any():
                channel_first = name == op.inputs[1] and unit(op.type).update_channel_first
                order = np.moveaxis(np.arange(g.size).reshape(g.shape), -1, 0).reshape(-1) if channel_first \
                    else np.arange(g.size)
                flat_bad = bad.reshape(-1)[order]
                first = int(np.argmax(flat_bad))
                rank = np.empty(g.size, np.int64)
                rank[order] = np.arange(g.size)
                allowed = (rank < first).reshape(g.shape)
                self.overflow = True
                g = np.where(allowed, g, F32(0))
        m = self.state.setdefault(name, np.zeros(g.shape, F32)) if self.momentum else None
        master = None
        if self.prog.update == "master":
            master = self.master.setdefault(name, f16.f32(cur).copy())
        m_old = None if m is None else m.copy()
        master_old = None if master is None else master.copy()
        new = f16.sgd(cur, g, self.lr, self.momentum, self.weight_decay, self.loss_scale_value, m, master)
        if not allowed.all():
            new = np.where(allowed, new, cur)
            if m is not None:
                m[...] = np.where(allowed, m, m_old)
            if master is not None:
                master[...] = np.where(allowed, master, master_old)
        p[sub] = new

    def _after_step(self) -> None:
        """tt_loss_scale_after_step."""
        if not self.prog.dynamic_loss_scale:
            return
        if self.overflow:
            if self.loss_scale_value > 1:
                self.loss_scale_value = F32(self.loss_scale_value * F32(0.5))
            self.loss_scale_good_steps = 0
        else:
            self.loss_scale_good_steps += 1
            if self.loss_scale_good_steps >= self.prog.loss_scale_interval:
                if self.loss_scale_value < 65536:
                    self.loss_scale_value = F32(self.loss_scale_value * F32(2))
                self.loss_scale_good_steps = 0
        self.overflow = False
