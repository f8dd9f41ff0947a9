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

# The model's one mutable tt_hparams (model.c.j2; tt_model_set_hparams writes it): every
# tt_update points to it.
HPARAMS = CExpr("&tt_train_hparams")
# Kernels whose Helium variants take the same arguments and give the same bits (the masks of
# train_f16_mve.c): any board may run them.
SAME_BITS = {"mve": True}


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
        self.half = prog.half                # precision fp16 / mixed: half parameters and gradients
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
        """A gradient buffer (float32, or float16 for a half tensor's gradient)."""
        return self.em.view(buf, self.prog.buffers[buf].dtype)

    def loss_scale(self) -> CExpr:
        """&tt_loss_scale of a half-precision step (model.c's one instance)."""
        return CExpr("&tt_train_loss_scale")

    def loss_scale_init(self) -> dict | None:
        """The initial loss scale (model.c.j2), None unless the step is half precision."""
        p = self.prog
        if not p.half:
            return None
        self.em.use("tt_loss_scale_after_step")
        return dict(scale=c_float(p.loss_scale), dynamic=int(p.dynamic_loss_scale),
                    interval=int(p.loss_scale_interval))

    def same_bytes(self, a: str, b: str) -> bool:
        return self.em.arena[a].offset == self.em.arena[b].offset

    def acc(self, step: BackwardStep, x: str) -> int:
        return int(step.accumulate[x])

    def conv_shape(self, op: Op, kh: int, kw: int) -> CExpr:
        """&tt_conv_shape of a conv / depthwise / pooling op: the forward's dims and geometry."""
        g, em = self.g, self.em
        (ih, iw, ic), (oh, ow, oc) = hwc(g.tensors[op.inputs[0]]), hwc(g.tensors[op.outputs[0]])
        fields = {"in": em.dims((ih, iw, ic)), "out": em.dims((oh, ow, oc)), "kh": kh, "kw": kw,
                  "g": em.geom(op)}
        return em.struct("tt_conv_shape", f"shape_{kh}x{kw}_{ih}x{iw}x{ic}_to_{oh}x{ow}x{oc}", **fields)

    def act_quant(self, tensor: str) -> CExpr:
        """&tt_act_quant of an int8 activation."""
        t = self.g.tensors[tensor]
        return self.em.struct("tt_act_quant", f"quant_{tensor}", scale=CExpr(c_float(t.scale)),
                              zero_point=int(t.zero_point))

    def weight_quant(self, op: Op) -> CExpr:
        """&tt_weight_quant of an op's int8 weight (its float32 scales in model_data.c)."""
        w = self.g.tensors[op.inputs[1]]
        s = w.quant.scale.astype(np.float32)
        key = ("wscale", w.name)
        if key not in self.em.cache:
            self.em.cache[key] = self.em.array(f"{w.name}_scale", "float32", s, f"{w.name} scales (float32)")
        return self.em.struct("tt_weight_quant", f"quant_{w.name}", scale=self.em.cache[key],
                              per_channel=int(s.size > 1))

    def channel_index(self, step: BackwardStep) -> CExpr:
        u = step.update
        if u is None or u.channel_index is None:
            return NULL
        key = ("chidx", step.op)
        if key not in self.em.cache:
            self.em.cache[key] = self.em.array(f"chidx_{step.op}", "int32", u.channel_index,
                                               f"{step.op} trained input channels")
        return self.em.cache[key]

    def channels(self, op: Op, step: BackwardStep) -> CExpr:
        """&tt_channels of a weight update: the trained input channels, and the activation the
        weight gradient reads (the full input, or a compact copy of the trained channels)."""
        full = unit(op.type).in_channels(self.g, op)
        k = trained_in_channels(self.g, op, step.update)
        idx = self.channel_index(step)
        compact = step.saved["x"] not in self.g.tensors
        base = f"channels_{op.name}" if idx is not NULL else f"channels_{k}_of_{full}"
        fields = {"in_channels": full, "k": k}
        if idx is not NULL:
            fields["index"] = idx
        return self.em.struct("tt_channels", base, **fields, x_channels=k if compact else full)

    def saved_x(self, step: BackwardStep, op: Op) -> CExpr:
        """The activation the weight gradient reads: the full input, or a compact copy of the
        trained channels (tt_channels.x_channels tells which)."""
        return self.view(step.saved["x"], self.g.tensors[op.inputs[0]].dtype)

    def update(self, name: str, n: int) -> tuple[CExpr, CExpr | None]:
        """(&tt_update of a parameter's n trained elements (compact layout), its shadow array or
        None): the hyper-parameters, the momentum array (if the program uses momentum), the
        update mode and that mode's state (tt_train_kernels.h). Every array is zeroed by
        tt_model_reset_optimizer; the caller registers how a shadow is re-derived. Updates
        without arrays of their own are shared, named by their mode."""
        em = self.em
        mode = self.prog.update
        fields: dict = {"hp": self.hparams, "mode": CExpr(f"TT_UPDATE_{mode.upper()}")}
        if self.prog.momentum:
            fields["momentum"] = em.state(f"m_{name}", "float32", n, f"{name} momentum")
        shadow = None
        if self.half:
            fields["ls"] = self.loss_scale()
        if mode == "master":
            shadow = fields["shadow"] = em.state(f"master_{name}", "float32", n, f"{name} fp32 master copy")
        elif mode == "shadow":
            shadow = fields["shadow"] = em.state(f"shadow_{name}", "float32", n,
                                                 f"{name} fp32 shadow (quantized units)")
        elif mode == "residual":
            fields["residual"] = em.state(f"residual_{name}", "int8", n, f"{name} residual (1/256 units)")
        elif mode == "stochastic":
            fields["rng"] = CExpr("&tt_update_rng")
        own = any(k in fields for k in ("momentum", "shadow", "residual"))
        base = f"update_{name}" if own else f"update_{'sgd' if mode == 'float' else mode}{'_f16' if self.half else ''}"
        return em.struct("tt_update", base, **fields), shadow

    def weight_update(self, op: Op, step: BackwardStep, rows: int) -> tuple[CExpr, CExpr, CExpr]:
        """(weight, &tt_channels, &tt_update) of a weight update over `rows` rows (weight
        elements per input channel); registers the optimizer state and how the reset
        re-derives it."""
        ch = self.channels(op, step)
        k = trained_in_channels(self.g, op, step.update)
        u, sh = self.update(op.inputs[1], rows * k)
        w = self.em.ptr(op.inputs[1])
        if sh is not None and self.half:
            self.state_init.append(self.em.call("tt_master_init_f16", ch, rows, w, sh))
        elif sh is not None:
            self.state_init.append(self.em.call("tt_qas_shadow_init_s8", ch, rows, w, sh))
        return w, ch, u

    def bias_update(self, op: Op, gy: CExpr) -> str:
        """The bias update of a weighted op from its output gradient gy."""
        b_t = self.g.tensors[op.inputs[2]]
        bp = self.em.ptr(op.inputs[2])
        out = self.em.dims(self.g.tensors[op.outputs[0]])
        u, sh = self.update(b_t.name, b_t.size)
        if self.half:
            if sh is not None:
                self.state_init.append(self.em.call("tt_master_init_f16", NULL, b_t.size, bp, sh))
            # bias_update_f16_mve.c: the same arguments and bits, any Helium board may run it
            return self.em.call(self.em.kernel("tt_bias_update_f16", allowed={"mve": True}), out, bp, gy, u)
        if not self.quantized:
            return self.em.call(self.em.kernel("tt_bias_update_f32"), out, bp, gy, u)
        s = qas.scales(self.g, op, b_t.name).reshape(-1).astype(np.float32)
        sc = self.em.array(f"{b_t.name}_scale", "float32", s, f"{b_t.name} scales (float32)")
        if sh is not None:
            self.state_init.append(self.em.call("tt_qas_shadow_init_s32", b_t.size, bp, sh))
        return self.em.call(self.em.kernel("tt_bias_update_s32"), out, bp, sc, gy, u)

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
                sfx = "f16" if y.dtype == "float16" else "f32"
                lines.append(em.call(em.kernel(f"tt_mask_{act}_{sfx}", allowed=SAME_BITS), self.view(op.outputs[0]), y.size,
                                     self.view(f.mask)))
        for tensor, saved, _ in f.saves:
            t = g.tensors[tensor]
            b = next(b for b in self.prog.backward if b.saved.get("x") == saved)
            ch = self.channels(self.ops[b.op], b)
            pixels = t.size // unit(self.ops[b.op].type).in_channels(g, self.ops[b.op])
            fn = em.kernel(f"tt_save_channels_{ {'int8': 's8', 'float16': 'f16'}.get(t.dtype, 'f32') }")
            lines.append(em.call(fn, ch, pixels, self.view(tensor), self.view(saved, t.dtype)))
        return lines

    def loss(self) -> list[str]:
        ls, g, em = self.prog.loss_step, self.g, self.em
        t = g.tensors[ls.logits]
        lp, gp = self.view(ls.logits), self.grad(ls.grad)
        if self.prog.loss == "softmax_cross_entropy":
            if t.dtype == "int8":
                em.use("tt_softmax_cross_entropy_s8")
                return [f"loss = tt_softmax_cross_entropy_s8({lp}, {self.act_quant(ls.logits)}, {t.size}, "
                        f"label, {gp});"]
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
            sfx = "f16" if self.prog.buffers[step.grad_out].dtype == "float16" else "f32"
            lines.append(self.em.call(self.em.kernel(f"tt_mask_apply_{sfx}", allowed=SAME_BITS), self.grad(step.grad_out), n,
                                      self.view(step.mask)))
        return lines + unit(op.type).emit_backward(self.em, op, step, self)
