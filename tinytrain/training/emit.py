"""The C of one training step, through the model's one Emitter (tinytrain.cgen.emitter):
the forward's extras (1-bit masks, saved channels), the loss, and the pruned backward with
in-place updates. Each op's backward comes from its unit (`emit_backward`); what all
backward steps share (gradient views, optimizer state, the parameter table) lives here.

The training step runs in ONE arena planned by tinytrain.training.memory: its offsets are
the Emitter's arena slots, so forward tensors, gradients, masks and saved channels are
all named arena views.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cgen.cformat import NULL, CExpr, c_float
from ..cgen.emitter import ArenaSlot, Emitter, hwc
from ..errors import UnsupportedError
from ..ir import Op
from ..ops import unit
from . import qas
from .program import BackwardStep, TrainingProgram, trained_in_channels

# The update kernels' hyper-parameter arguments (file-scope variables of model.c).
HPARAMS = (CExpr("tt_lr"), CExpr("tt_momentum"), CExpr("tt_weight_decay"))


@dataclass
class ParamInfo:
    """One trainable parameter as tt_model_param(i) reports it."""
    name: str
    cname: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


def training_arena(prog: TrainingProgram, offsets: dict[str, int]) -> dict[str, ArenaSlot]:
    """Arena slots of every buffer of the step and every forward tensor (by its buffer)."""
    def root(name: str) -> str:
        b = prog.buffers[name]
        while b.alias_of is not None:
            name, b = b.alias_of, prog.buffers[b.alias_of]
        return name
    arena = {name: ArenaSlot(int(offsets[root(name)]), b.dtype) for name, b in prog.buffers.items()}
    for t in prog.graph.activations():
        buf = prog.tensor_buffer[t.name]
        arena[t.name] = ArenaSlot(arena[buf].offset, t.dtype)
    return arena


def trained_params(prog: TrainingProgram) -> list[ParamInfo]:
    """The trainable parameters, weight before bias, in schedule order."""
    g = prog.graph
    ops = {op.name: op for op in g.ops}
    out = []
    for name, u in prog.scheme.layers.items():
        op = ops[name]
        for trained, t in ((u.weight, op.inputs[1]), (u.bias, op.inputs[2])):
            if trained:
                tt = g.tensors[t]
                out.append(ParamInfo(t, "", tt.dtype, tt.shape, tt.nbytes))
    return out


class TrainEmit:
    """Emits the training half of a model's C; the op units call back into it."""

    def __init__(self, prog: TrainingProgram, em: Emitter, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        prog.check_momentum(momentum)
        self.prog = prog
        self.em = em
        self.g = prog.graph
        self.quantized = prog.quantized
        self.hparams = HPARAMS
        self.initial_hparams = (c_float(lr), c_float(momentum), c_float(weight_decay))
        self.ops = {op.name: op for op in self.g.ops}
        self.state_init: list[str] = []
        self.params = trained_params(prog)
        for p in self.params:
            p.cname = em.const(p.name).text

    # --- what op units call --------------------------------------------------------------
    def view(self, buf: str, dtype: str | None = None) -> CExpr:
        return self.em.view(buf, dtype)

    def grad(self, buf: str) -> CExpr:
        return self.em.view(buf, "float32")

    def same_bytes(self, a: str, b: str) -> bool:
        return self.em.arena[a].offset == self.em.arena[b].offset

    def acc(self, step: BackwardStep, x: str) -> int:
        return int(step.accumulate[x])

    def weight_scale(self, op: Op) -> tuple[CExpr, int]:
        """(float32 array of the weight's scales, 1 if per channel)."""
        w = self.g.tensors[op.inputs[1]]
        s = w.quant.scale.astype(np.float32)
        key = ("wscale", w.name)
        if key not in self.em.cache:
            self.em.cache[key] = self.em.array(f"{w.name}_scale", "float32", s, f"{w.name} scales (float32)")
        return self.em.cache[key], int(s.size > 1)

    def channel_index(self, step: BackwardStep) -> CExpr:
        u = step.update
        if u is None or u.channel_index is None:
            return NULL
        key = ("chidx", step.op)
        if key not in self.em.cache:
            self.em.cache[key] = self.em.array(f"chidx_{step.op}", "int32", u.channel_index,
                                               f"{step.op} trained input channels")
        return self.em.cache[key]

    def saved_x(self, step: BackwardStep, op: Op) -> tuple[CExpr, list]:
        """(the activation the weight gradient reads, its quantization arguments [scale, zero
        point] for int8): the full input, or a compact copy of the trained channels."""
        t = self.g.tensors[op.inputs[0]]
        q = [CExpr(c_float(t.scale)), t.zero_point] if self.quantized else []
        return self.view(step.saved["x"], t.dtype), q

    def saved_dims(self, step: BackwardStep, op: Op) -> CExpr:
        """tt_dims of that activation as stored (a compact copy has the trained channels only)."""
        saved = step.saved["x"]
        h, w, c = hwc(self.g.tensors[op.inputs[0]])
        if saved not in self.g.tensors:
            c = self.prog.buffers[saved].shape[-1]
        return self.em.dims((h, w, c))

    def update_state(self, name: str, n: int) -> tuple[CExpr, CExpr, CExpr | None]:
        """(momentum buffer, update state, shadow) of a parameter's n trained elements
        (compact layout): the momentum array or NULL; NULL (float parameters, round to
        nearest) or the address of the parameter's tt_qas_state (the update mode's arrays,
        tt_train_kernels.h); its shadow array or None. Every array is zeroed by
        tt_model_reset_optimizer; the caller registers how a shadow is re-derived."""
        em = self.em
        m = em.state(f"m_{name}", "float32", n, f"{name} momentum") if self.prog.momentum else NULL
        mode = self.prog.update
        if not self.quantized or mode == "nearest":
            return m, NULL, None
        shadow = residual = rng = NULL
        if mode == "shadow":
            shadow = em.state(f"shadow_{name}", "float32", n, f"{name} fp32 shadow (quantized units)")
        elif mode == "residual":
            residual = em.state(f"residual_{name}", "int8", n, f"{name} residual (1/256 units)")
        else:
            rng = CExpr("&tt_update_rng")
        qs = em.struct("tt_qas_state", f"tt_qs_{name}", mode=CExpr(f"TT_UPDATE_{mode.upper()}"),
                       shadow=shadow, residual=residual, rng=rng)
        return m, qs, (None if shadow is NULL else shadow)

    def weight_update_state(self, op: Op, step: BackwardStep, rows: int, row_stride: int):
        """(weight, trained channels k, channel index, momentum, update state) of a weight
        update over `rows` rows of `row_stride` input channels; registers the optimizer
        state and how the reset re-derives it."""
        k = trained_in_channels(self.g, op, step.update)
        idx = self.channel_index(step)
        m, qs, sh = self.update_state(op.inputs[1], rows * k)
        w = self.em.ptr(op.inputs[1])
        if sh is not None:
            self.state_init.append(self.em.call("tt_qas_shadow_init_s8", sh, w, rows, k, row_stride, idx))
        return w, k, idx, m, qs

    def bias_update(self, op: Op, gy: CExpr, pixels: int, channels: int) -> str:
        b_t = self.g.tensors[op.inputs[2]]
        bp = self.em.ptr(op.inputs[2])
        m, qs, sh = self.update_state(b_t.name, channels)
        if not self.quantized:
            return self.em.call(self.em.kernel("tt_bias_update_f32"), bp, gy, pixels, channels, *self.hparams, m)
        s = qas.scales(self.g, op, b_t.name).reshape(-1).astype(np.float32)
        sc = self.em.array(f"{b_t.name}_scale", "float32", s, f"{b_t.name} scales (float32)")
        if sh is not None:
            self.state_init.append(self.em.call("tt_qas_shadow_init_s32", sh, bp, channels))
        return self.em.call(self.em.kernel("tt_bias_update_s32"), bp, gy, pixels, channels, sc, *self.hparams,
                            m, qs)

    # --- the step ------------------------------------------------------------------------------
    def forward_extra(self, op: Op) -> list[str]:
        """After the op's forward: its output's 1-bit mask, and saved channels of its output."""
        f = next(f for f in self.prog.forward if f.op == op.name)
        g, em = self.g, self.em
        lines = []
        if f.mask:
            y = g.tensors[op.outputs[0]]
            if self.quantized:
                lo, hi = qas.clamp_range(g, op)
                lines.append(em.call(em.kernel("tt_mask_clamp_s8"), self.view(op.outputs[0]), y.size, lo, hi,
                                     self.view(f.mask)))
            else:
                act = unit(op.type).activation(op)
                lines.append(em.call(em.kernel(f"tt_mask_{act}_f32"), self.view(op.outputs[0]), y.size,
                                     self.view(f.mask)))
        for tensor, saved, k in f.saves:
            t = g.tensors[tensor]
            h, w, c = hwc(t)
            fn = em.kernel(f"tt_save_channels_{'s8' if t.dtype == 'int8' else 'f32'}")
            lines.append(em.call(fn, self.view(tensor), h * w, c, k, self._index_for_saved(saved),
                                 self.view(saved, t.dtype)))
        return lines

    def _index_for_saved(self, saved: str) -> CExpr:
        for b in self.prog.backward:
            if b.saved.get("x") == saved:
                return self.channel_index(b)
        return NULL

    def loss(self) -> list[str]:
        ls, g, em = self.prog.loss_step, self.g, self.em
        t = g.tensors[ls.logits]
        lp, gp = self.view(ls.logits), self.grad(ls.grad)
        if self.prog.loss == "softmax_cross_entropy":
            if t.dtype == "int8":
                em.use("tt_softmax_cross_entropy_s8")
                return [f"loss = tt_softmax_cross_entropy_s8({lp}, {t.size}, {c_float(t.scale)}, "
                        f"{t.zero_point}, label, {gp});"]
            em.use("tt_softmax_cross_entropy_f32")
            return [f"loss = tt_softmax_cross_entropy_f32({lp}, {t.size}, label, {gp});"]
        if t.dtype != "float32":
            raise UnsupportedError(ls.logits, "mse loss on int8 outputs (use softmax_cross_entropy)")
        em.use("tt_mse_f32")
        return [f"float target[{t.size}];",
                "int32_t i;",
                f"for (i = 0; i < {t.size}; ++i) {{ target[i] = (i == label) ? 1.0f : 0.0f; }}",
                f"loss = tt_mse_f32({lp}, target, {t.size}, {gp});"]

    def backward(self, step: BackwardStep) -> list[str]:
        op = self.ops[step.op]
        lines = []
        if step.mask:
            n = self.g.tensors[op.outputs[0]].size
            lines.append(self.em.call(self.em.kernel("tt_mask_apply_f32"), self.grad(step.grad_out), n,
                                      self.view(step.mask)))
        return lines + unit(op.type).emit_backward(self.em, op, step, self)
