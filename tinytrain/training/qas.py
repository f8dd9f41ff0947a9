"""Quantization-aware scaling (QAS) of the updates of int8 weights and int32 biases.

The gradient w.r.t. an int8 weight is G_Wq = s_W * G_W (G_W: w.r.t. the real weight);
QAS multiplies it by s_W^-2, so the step on W_q is G_W / s_W: the very step fp32 SGD
takes, expressed in quantization steps. Biases (scale s_b = s_W * s_x): G_b / s_b.
The new value is rounded to nearest (half away from zero) and saturated; an optional
fp32 shadow copy (in quantization units) keeps the sub-LSB part of small updates.
All arithmetic is float32, in the order of firmware/include/tt_train_kernels.h:
    u = g / s [+ wd * v];  m = mu * m + u (momentum);  step = lr * m
    no shadow: q' = sat(round(q - step)) (exact difference), v = q
    shadow:    shadow = clamp(shadow - step, qmin, qmax), q' = round(shadow), v = shadow
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ..ops import unit

F32 = np.float32
INT_RANGE = {"int8": (-127, 127), "int32": (-(2 ** 31), 2 ** 31 - 1)}


def clamp_range(graph: Graph, op: Op) -> tuple[int, int]:
    """The int8 clamp of an op's output: the gradient is 0 where the output sits on it."""
    return unit(op.type).clamp(graph, op) or (-128, 127)


def scales(graph: Graph, op: Op, name: str) -> np.ndarray:
    """float32 s per output channel of a weight (conv/fc axis 0, depthwise axis 2) or bias,
    shaped to broadcast against that tensor."""
    t = graph.tensors[name]
    w = graph.tensors[op.inputs[1]]
    if name == op.inputs[2]:
        if t.quant is not None:
            s = t.quant.scale
        else:
            s = w.quant.scale * graph.tensors[op.inputs[0]].scale
        return np.broadcast_to(s.astype(F32), t.shape).astype(F32)
    s = t.quant.scale.astype(F32)
    shape = [1] * len(t.shape)
    axis = unit(op.type).weight_out_axis
    shape[axis] = -1
    if s.size == 1:
        s = np.repeat(s, t.shape[axis])
    return s.reshape(shape)


def round_half_away(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))


def update_int(trainer, op: Op, name: str, p: np.ndarray, grad: np.ndarray, sub) -> None:
    """In-place QAS-SGD step on the int8/int32 parameter `name` (its trained part `sub`)."""
    t = trainer.g.tensors[name]
    s = np.broadcast_to(scales(trainer.g, op, name), p.shape)[sub]
    cur = p[sub]
    lo, hi = INT_RANGE[t.dtype]
    if trainer.prog.shadow:
        sh = trainer.shadow.setdefault(name, p.astype(F32))
        v = sh[sub]
    else:
        v = cur.astype(F32)
    u = (grad.astype(F32) / s).astype(F32)
    if trainer.weight_decay:
        u = (u + trainer.weight_decay * v).astype(F32)
    if trainer.momentum:
        m = trainer.state.setdefault(name, np.zeros_like(u))
        m[...] = (trainer.momentum * m + u).astype(F32)
        u = m
    step = (trainer.lr * u).astype(F32)
    if trainer.prog.shadow:
        sh[sub] = np.clip((v - step).astype(F32), lo, hi)
        new = sh[sub].astype(np.float64)
    else:
        new = cur.astype(np.float64) - step.astype(np.float64)
    p[sub] = np.clip(round_half_away(new), lo, hi).astype(p.dtype)
