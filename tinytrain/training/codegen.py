"""C code of one training step: forward with masks and saved channels, loss, and the
pruned backward with in-place updates, over ONE arena planned by memory.py.

`TrainingCodegen(prog)` is the `train=` hook of tinytrain.codegen.generate_model: it marks
the trained weights / biases as SRAM (`mutable_constants`) and renders templates/train.*.j2.
`generate_training_model(graph, scheme, out_dir)` does all of it (channel reordering first).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..codegen import ModelArtifacts, c_float, c_identifier, generate_model, hwc
from ..errors import UnsupportedError
from ..ir import Graph, Op
from ..planner import Plan
from . import qas
from .memory import memory_report
from .program import BackwardStep, TrainingProgram, build_program, trained_in_channels

DTYPE_CODES = {"int8": "TT_DTYPE_S8", "int32": "TT_DTYPE_S32", "float32": "TT_DTYPE_F32"}
CTYPES = {"int8": "int8_t", "int32": "int32_t", "float32": "float", "bits": "uint8_t"}
HPARAMS = "tt_lr, tt_momentum, tt_weight_decay"     # the update kernels' hyperparameter arguments


def _input_grad_only(emit):
    """Backward emitter of an op whose one gradient output is its input's (op.inputs[0]):
    nothing when that input needs no gradient, else emit(self, op, b, gy, gx, acc, *rest)
    with gx the C pointer of the input's gradient buffer and acc its accumulate flag."""
    @functools.wraps(emit)
    def emit_if_needed(self, op: Op, b: BackwardStep, gy: str, *rest) -> list[str]:
        x = op.inputs[0]
        if x not in b.grad_inputs:
            return []
        return emit(self, op, b, gy, self.ptr(b.grad_inputs[x]), self._acc(b, x), *rest)
    return emit_if_needed


@dataclass
class ParamInfo:
    """One trainable parameter as tt_model_param(i) reports it."""
    name: str
    cname: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


class TrainingCodegen:
    """Renders the training half of a model's C for a TrainingProgram."""

    def __init__(self, prog: TrainingProgram, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        prog.check_momentum(momentum)
        self.prog = prog
        self.g = prog.graph
        self.hparams = (float(lr), float(momentum), float(weight_decay))
        self.memory = memory_report(prog)
        self.ops = {op.name: op for op in self.g.ops}
        self.params: list[ParamInfo] = []
        for name, u in prog.scheme.layers.items():
            op = self.ops[name]
            for trained, t in ((u.weight, op.inputs[1]), (u.bias, op.inputs[2])):
                if trained:
                    tt = self.g.tensors[t]
                    self.params.append(ParamInfo(t, c_identifier(t), tt.dtype, tt.shape, tt.nbytes))
        self.mutable_constants = {p.name for p in self.params}

    # --- the arena ----------------------------------------------------------------------
    def root(self, buf: str) -> str:
        b = self.prog.buffers[buf]
        while b.alias_of is not None:
            buf, b = b.alias_of, self.prog.buffers[b.alias_of]
        return buf

    def offset(self, buf: str) -> int:
        return int(self.memory["offsets"][self.root(buf)])

    def plan(self) -> Plan:
        """The forward tensors' offsets in the training arena, as a planner.Plan for
        generate_model (inference then runs in the very same arena)."""
        offsets = {t.name: self.offset(self.prog.tensor_buffer[t.name]) for t in self.g.activations()}
        return Plan(offsets=offsets, arena_bytes=int(self.memory["arena_bytes"]), algorithm="training")

    def ptr(self, buf: str, dtype: str | None = None) -> str:
        dtype = dtype or self.prog.buffers[buf].dtype
        return f"(({CTYPES[dtype]} *)(tt_arena + {self.offset(buf)}))"

    # --- rendering ------------------------------------------------------------------------
    def render(self, em) -> dict[str, Any]:
        from ..codegen import _environment
        self.em = em
        self.state: list[dict] = []          # momentum, shadows, residuals (SRAM arrays)
        self.state_init: list[str] = []      # re-derive the update state from the parameters
        self.qas_states: list[dict] = []     # the tt_qas_state of each quantized parameter
        self.cache: dict[tuple, str] = {}
        steps = {s["name"]: s for s in em.steps}
        forward = []
        for f in self.prog.forward:
            forward.append(dict(step=steps[f.op], extra=self._forward_extra(f)))
        loss = self._loss()
        backward = [dict(op=b.op, type=self.ops[b.op].type, lines=self._backward(b))
                    for b in self.prog.backward]
        out = self.g.tensors[self.g.outputs[0]]
        mode = qas.update_mode(self.prog.update)
        ctx = dict(forward=forward, loss=loss, backward=backward, params=self.params,
                   dtype_codes=DTYPE_CODES, state=self.state, state_init=self.state_init,
                   qas_states=self.qas_states, update_mode=mode, update_seed=f"0x{self.prog.update_seed:08X}u",
                   update_extra_bytes=self.memory["update_state_bytes"],
                   momentum_bytes=self.memory["momentum_bytes"],
                   lr=c_float(self.hparams[0]), momentum=c_float(self.hparams[1]),
                   weight_decay=c_float(self.hparams[2]), output_size=out.size,
                   output_ctype=CTYPES[out.dtype], memory=self.memory,
                   trainable_bytes=self.memory["trainable_param_bytes"],
                   quantized=self.prog.quantized, scheme=self.prog.scheme.describe(),
                   scheme_name=self.prog.scheme.name, loss_name=self.prog.loss)
        env = _environment()
        extra = dict(memory={k: v for k, v in self.memory.items() if k != "offsets"},
                     params=self.params, program=self.prog)
        return dict(header=env.get_template("train.h.j2").render(**ctx),
                    source=env.get_template("train.c.j2").render(**ctx), extra=extra)

    def _floats(self, cname: str, values, comment: str) -> str:
        return self.em.add_array(cname, "float32", np.asarray(values, np.float32), comment)

    def _ints(self, cname: str, values, comment: str) -> str:
        return self.em.add_array(cname, "int32", np.asarray(values, np.int32), comment)

    def _dims(self, h: int, w: int, c: int) -> str:
        return self.em.dims.setdefault((h, w, c), f"dims_{h}x{w}x{c}")

    def _state_array(self, cname: str, n: int, comment: str, ctype: str = "float") -> str:
        cname = f"tt_state_{cname}"
        self.state.append(dict(cname=cname, count=n, comment=comment, ctype=ctype))
        return cname

    # --- forward: masks and saved channels --------------------------------------------------
    def _forward_extra(self, f) -> list[str]:
        g, op = self.g, self.ops[f.op]
        lines = []
        if f.mask:
            y = g.tensors[op.outputs[0]]
            yp, mp = self.ptr(self.prog.tensor_buffer[op.outputs[0]], y.dtype), self.ptr(f.mask)
            if self.prog.quantized:
                lo, hi = qas.clamp_range(g, op)
                lines.append(f"tt_mask_clamp_s8({yp}, {y.size}, {lo}, {hi}, {mp});")
            else:
                act = op.type if op.type in ("relu", "relu6") else op.attrs.get("activation", "none")
                lines.append(f"tt_mask_{act}_f32({yp}, {y.size}, {mp});")
        for tensor, saved, k in f.saves:
            t = g.tensors[tensor]
            h, w, c = hwc(t)
            idx = self._channel_index_for(saved)
            suffix = "s8" if t.dtype == "int8" else "f32"
            lines.append(f"tt_save_channels_{suffix}({self.ptr(self.prog.tensor_buffer[tensor], t.dtype)}, "
                         f"{h * w}, {c}, {k}, {idx}, {self.ptr(saved)});")
        return lines

    def _channel_index_for(self, saved: str) -> str:
        for b in self.prog.backward:
            if b.saved.get("x") == saved:
                return self._channel_index(b)
        return "NULL"

    def _channel_index(self, b: BackwardStep) -> str:
        u = b.update
        if u is None or u.channel_index is None:
            return "NULL"
        key = ("chidx", b.op)
        if key not in self.cache:
            self.cache[key] = self._ints(f"chidx_{c_identifier(b.op)}", u.channel_index,
                                         f"{b.op} trained input channels")
        return self.cache[key]

    # --- loss ---------------------------------------------------------------------------------
    def _loss(self) -> list[str]:
        ls, g = self.prog.loss_step, self.g
        t = g.tensors[ls.logits]
        lp, gp = self.ptr(self.prog.tensor_buffer[ls.logits], t.dtype), self.ptr(ls.grad)
        if self.prog.loss == "softmax_cross_entropy":
            if t.dtype == "int8":
                return [f"loss = tt_softmax_cross_entropy_s8({lp}, {t.size}, {c_float(t.scale)}f, "
                        f"{t.zero_point}, label, {gp});"]
            return [f"loss = tt_softmax_cross_entropy_f32({lp}, {t.size}, label, {gp});"]
        if t.dtype != "float32":
            raise UnsupportedError(ls.logits, "mse loss on int8 outputs (use softmax_cross_entropy)")
        return [f"float target[{t.size}];",
                "int32_t i;",
                f"for (i = 0; i < {t.size}; ++i) {{ target[i] = (i == label) ? 1.0f : 0.0f; }}",
                f"loss = tt_mse_f32({lp}, target, {t.size}, {gp});"]

    # --- backward -------------------------------------------------------------------------------
    def _backward(self, b: BackwardStep) -> list[str]:
        op = self.ops[b.op]
        lines = []
        gy_t = self.g.tensors[op.outputs[0]]
        gy = self.ptr(b.grad_out)
        if b.mask:
            lines.append(f"tt_mask_apply_f32({gy}, {gy_t.size}, {self.ptr(b.mask)});")
        emit = getattr(self, f"_bw_{op.type}", None)
        if emit is None:
            raise UnsupportedError(op.name, f"backward of {op.type!r} in C")
        lines += emit(op, b, gy)
        return lines

    def _acc(self, b: BackwardStep, x: str) -> int:
        return int(b.accumulate[x])

    def _pass_through(self, op: Op, b: BackwardStep, gy: str) -> list[str]:
        """d x = d y (relu/relu6 after their mask, reshape, quantize, dequantize, add)."""
        lines = []
        n = self.g.tensors[op.outputs[0]].size
        for x, gx in b.grad_inputs.items():
            if self.root(gx) == self.root(b.grad_out):
                continue      # the same arena bytes (a reshape's view)
            if b.accumulate[x]:
                lines.append(f"tt_add_grad_f32({self.ptr(gx)}, {gy}, {n});")
            else:
                lines.append(f"memcpy({self.ptr(gx)}, {gy}, {4 * n});")
        return lines

    _bw_relu = _bw_relu6 = _bw_reshape = _bw_quantize = _bw_dequantize = _bw_add = _pass_through

    def _weight_scale(self, op: Op) -> tuple[str, int]:
        w = self.g.tensors[op.inputs[1]]
        s = w.quant.scale.astype(np.float32)
        key = ("wscale", w.name)
        if key not in self.cache:
            self.cache[key] = self._floats(f"{c_identifier(w.name)}_scale", s, f"{w.name} scales (float32)")
        return self.cache[key], int(s.size > 1)

    @_input_grad_only
    def _grad_input(self, op: Op, b: BackwardStep, gy: str, gx: str, acc: int, dims) -> list[str]:
        g, em = self.g, self.em
        w = em.ptr(op.inputs[1])
        if op.type == "fully_connected":
            wt = g.tensors[op.inputs[1]]
            if self.prog.quantized:
                sc, pc = self._weight_scale(op)
                return [f"tt_fully_connected_grad_input_s8({gy}, {wt.shape[0]}, {w}, {sc}, {pc}, "
                        f"{wt.shape[1]}, {acc}, {gx});"]
            return [f"tt_fully_connected_grad_input_f32({gy}, {wt.shape[0]}, {w}, {wt.shape[1]}, {acc}, {gx});"]
        in_d, out_d, kh, kw, geom = dims
        if self.prog.quantized:
            sc, pc = self._weight_scale(op)
            return [f"tt_{op.type}_grad_input_s8({gy}, &{out_d}, {w}, {sc}, {pc}, {kh}, {kw}, &{geom}, "
                    f"{acc}, {gx}, &{in_d});"]
        return [f"tt_{op.type}_grad_input_f32({gy}, &{out_d}, {w}, {kh}, {kw}, &{geom}, {acc}, {gx}, &{in_d});"]

    def _x_args(self, b: BackwardStep, x_tensor: str) -> tuple[str, str]:
        """(pointer to the activation the weight gradient reads, its quantization args)."""
        saved = b.saved["x"]
        t = self.g.tensors[x_tensor]
        buf = self.prog.tensor_buffer[saved] if saved in self.g.tensors else saved
        p = self.ptr(buf, t.dtype)
        if self.prog.quantized:
            return p, f"{c_float(t.scale)}f, {t.zero_point}"
        return p, ""

    def _update_state(self, name: str, n: int) -> tuple[str, str, str | None]:
        """(momentum buffer, update state, shadow) C expressions of a parameter's n trained
        elements (compact layout): "NULL" or an array; "NULL" (float parameters, round to
        nearest) or the address of the parameter's tt_qas_state; its shadow array or None.
        Registers the SRAM arrays (zeroed by tt_model_reset_optimizer: no momentum, no
        residual); the caller registers how the reset re-derives a shadow."""
        cname = c_identifier(name)
        m = self._state_array(f"m_{cname}", n, f"{name} momentum") if self.prog.momentum else "NULL"
        mode = self.prog.update
        if not self.prog.quantized or mode == "nearest":
            return m, "NULL", None
        shadow = residual = rng = "NULL"
        if mode == "shadow":
            shadow = self._state_array(f"shadow_{cname}", n, f"{name} fp32 shadow (quantized units)")
        elif mode == "residual":
            residual = self._state_array(f"residual_{cname}", n, f"{name} residual (1/256 units)",
                                         ctype="int8_t")
        else:
            rng = "&tt_update_rng"
        qs = f"tt_qs_{cname}"
        self.qas_states.append(dict(cname=qs, mode=f"TT_UPDATE_{mode.upper()}", shadow=shadow,
                                    residual=residual, rng=rng))
        return m, f"&{qs}", (shadow if shadow != "NULL" else None)

    def _weight_update_state(self, op: Op, b: BackwardStep, rows: int, row_stride: int):
        """(weight pointer, trained channels k, channel index, momentum, update state) of a
        weight update over `rows` rows of `row_stride` input channels (the first k, or those
        the channel index lists, are trained); registers the optimizer state and how the
        reset re-derives it."""
        k = trained_in_channels(self.g, op, b.update)
        idx = self._channel_index(b)
        m, qs, sh = self._update_state(op.inputs[1], rows * k)
        w = self.em.ptr(op.inputs[1])
        if sh is not None:
            self.state_init.append(f"tt_qas_shadow_init_s8({sh}, {w}, {rows}, {k}, {row_stride}, {idx});")
        return w, k, idx, m, qs

    def _conv_like(self, op: Op, b: BackwardStep, gy: str) -> list[str]:
        g, em = self.g, self.em
        x_t, y_t, w_t = (g.tensors[t] for t in (op.inputs[0], op.outputs[0], op.inputs[1]))
        dw = op.type == "depthwise_conv2d"
        kh, kw = (w_t.shape[0], w_t.shape[1]) if dw else (w_t.shape[1], w_t.shape[2])
        in_d, out_d, geom = em.dims_of(x_t), em.dims_of(y_t), em.geom_of(op)
        lines = self._grad_input(op, b, gy, (in_d, out_d, kh, kw, geom))
        if b.computes_weight_grad:
            cin = w_t.shape[2] if dw else w_t.shape[3]
            xh, xw, xc = hwc(x_t)
            if b.saved["x"] not in g.tensors:       # a compact copy of the trained channels
                xc = self.prog.buffers[b.saved["x"]].shape[-1]
            xs_d = self._dims(xh, xw, xc)
            xp, xq = self._x_args(b, op.inputs[0])
            rows = (kh * kw) if dw else (w_t.shape[0] * kh * kw)
            w, k, idx, m, qs = self._weight_update_state(op, b, rows, cin)
            scratch = self.ptr(b.scratch)
            if self.prog.quantized:
                sc, pc = self._weight_scale(op)
                if dw:
                    lines.append(f"tt_depthwise_conv2d_update_weight_s8({w}, {sc}, {pc}, {xp}, &{xs_d}, {xq}, "
                                 f"{gy}, &{out_d}, {kh}, {kw}, &{geom}, {k}, {idx}, {HPARAMS}, {m}, {qs}, {scratch});")
                else:
                    lines.append(f"tt_conv2d_update_weight_s8({w}, {cin}, {sc}, {pc}, {xp}, &{xs_d}, {xq}, "
                                 f"{gy}, &{out_d}, {kh}, {kw}, &{geom}, {k}, {idx}, {HPARAMS}, {m}, {qs}, {scratch});")
            elif dw:
                lines.append(f"tt_depthwise_conv2d_update_weight_f32({w}, {xp}, &{xs_d}, {gy}, &{out_d}, "
                             f"{kh}, {kw}, &{geom}, {k}, {idx}, {HPARAMS}, {m}, {scratch});")
            else:
                lines.append(f"tt_conv2d_update_weight_f32({w}, {cin}, {xp}, &{xs_d}, {gy}, &{out_d}, "
                             f"{kh}, {kw}, &{geom}, {k}, {idx}, {HPARAMS}, {m}, {scratch});")
        if b.computes_bias_grad:
            h, w_, c = hwc(y_t)
            lines.append(self._bias_update(op, gy, h * w_, c))
        return lines

    _bw_conv2d = _bw_depthwise_conv2d = _conv_like

    def _bw_fully_connected(self, op: Op, b: BackwardStep, gy: str) -> list[str]:
        w_t = self.g.tensors[op.inputs[1]]
        out_f, in_f = w_t.shape
        lines = self._grad_input(op, b, gy, None)
        if b.computes_weight_grad:
            xp, xq = self._x_args(b, op.inputs[0])
            w, k, idx, m, qs = self._weight_update_state(op, b, out_f, in_f)
            if self.prog.quantized:
                sc, pc = self._weight_scale(op)
                lines.append(f"tt_fully_connected_update_weight_s8({w}, {in_f}, {sc}, {pc}, {xp}, {xq}, {gy}, "
                             f"{out_f}, {k}, {idx}, {HPARAMS}, {m}, {qs});")
            else:
                lines.append(f"tt_fully_connected_update_weight_f32({w}, {in_f}, {xp}, {gy}, {out_f}, {k}, "
                             f"{idx}, {HPARAMS}, {m});")
        if b.computes_bias_grad:
            lines.append(self._bias_update(op, gy, 1, out_f))
        return lines

    def _bias_update(self, op: Op, gy: str, pixels: int, channels: int) -> str:
        g, em = self.g, self.em
        b_t = g.tensors[op.inputs[2]]
        bp = em.ptr(op.inputs[2])
        m, qs, sh = self._update_state(b_t.name, channels)
        if not self.prog.quantized:
            return f"tt_bias_update_f32({bp}, {gy}, {pixels}, {channels}, {HPARAMS}, {m});"
        s = qas.scales(g, op, b_t.name).reshape(-1).astype(np.float32)
        sc = self._floats(f"{c_identifier(b_t.name)}_scale", s, f"{b_t.name} scales (float32)")
        if sh is not None:
            self.state_init.append(f"tt_qas_shadow_init_s32({sh}, {bp}, {channels});")
        return f"tt_bias_update_s32({bp}, {gy}, {pixels}, {channels}, {sc}, {HPARAMS}, {m}, {qs});"

    def _pool_args(self, op: Op):
        """(input dims, output dims, kh, kw, geometry) C names of a pooling op."""
        g, em = self.g, self.em
        x_t, y_t = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        kh, kw = op.attrs["kernel"]
        return em.dims_of(x_t), em.dims_of(y_t), kh, kw, em.geom_of(op)

    @_input_grad_only
    def _bw_avg_pool2d(self, op: Op, b: BackwardStep, gy: str, gx: str, acc: int) -> list[str]:
        in_d, out_d, kh, kw, geom = self._pool_args(op)
        return [f"tt_avg_pool2d_grad_input_f32({gy}, &{out_d}, {kh}, {kw}, &{geom}, {acc}, {gx}, &{in_d});"]

    @_input_grad_only
    def _bw_max_pool2d(self, op: Op, b: BackwardStep, gy: str, gx: str, acc: int) -> list[str]:
        in_d, out_d, kh, kw, geom = self._pool_args(op)
        x = op.inputs[0]
        t = self.g.tensors[x]
        sfx = "s8" if t.dtype == "int8" else "f32"
        xp = self.ptr(self.prog.tensor_buffer[x], t.dtype)
        return [f"tt_max_pool2d_grad_input_{sfx}({xp}, &{in_d}, {gy}, &{out_d}, {kh}, {kw}, &{geom}, "
                f"{acc}, {gx});"]

    @_input_grad_only
    def _bw_global_avg_pool(self, op: Op, b: BackwardStep, gy: str, gx: str, acc: int) -> list[str]:
        in_d = self.em.dims_of(self.g.tensors[op.inputs[0]])
        return [f"tt_global_avg_pool_grad_input_f32({gy}, &{in_d}, {acc}, {gx});"]

    @_input_grad_only
    def _bw_pad(self, op: Op, b: BackwardStep, gy: str, gx: str, acc: int) -> list[str]:
        in_d, out_d = self.em.dims_of(self.g.tensors[op.inputs[0]]), self.em.dims_of(self.g.tensors[op.outputs[0]])
        top, _, left, _ = op.attrs["pad"]
        return [f"tt_pad_grad_input_f32({gy}, &{out_d}, {top}, {left}, {acc}, {gx}, &{in_d});"]

    @_input_grad_only
    def _bw_softmax(self, op: Op, b: BackwardStep, gy: str, gx: str, acc: int) -> list[str]:
        y_t = self.g.tensors[op.outputs[0]]
        if y_t.dtype != "float32":
            raise UnsupportedError(op.name, "int8 softmax inside a training graph (only as the last op)")
        if float(op.attrs.get("beta", 1.0)) != 1.0:
            raise UnsupportedError(op.name, "softmax beta != 1 inside a training graph")
        depth = y_t.shape[-1]
        return [f"tt_softmax_grad_input_f32({self.ptr(self.prog.tensor_buffer[op.outputs[0]], 'float32')}, "
                f"{gy}, {y_t.size // depth}, {depth}, {acc}, {gx});"]


# --- one call: graph + scheme -> C ------------------------------------------------------------

def generate_training_model(graph: Graph, scheme, out_dir: Path, *, loss: str = "softmax_cross_entropy",
                            momentum: bool = False, shadow: bool = False, update: str | None = None,
                            update_seed: int | None = None, lr: float = 0.01,
                            momentum_value: float = 0.0, weight_decay: float = 0.0,
                            reorder: bool = True) -> ModelArtifacts:
    """Build the training program of `graph` under `scheme` (channels reordered first so a
    partial update trains the largest-magnitude channels) and write its C into out_dir.
    The returned artifacts' extra holds "program" (the TrainingProgram of the written C,
    on the reordered graph), "params" and "memory"."""
    if reorder:
        from .reorder import reorder_for_scheme
        graph, scheme = reorder_for_scheme(graph, scheme)
    prog = build_program(graph, scheme, loss=loss, momentum=momentum, shadow=shadow, update=update,
                         update_seed=update_seed)
    gen = TrainingCodegen(prog, lr=lr, momentum=momentum_value, weight_decay=weight_decay)
    return generate_model(prog.graph, out_dir, train=gen)
