"""Quantization-aware scaling (QAS) of the updates of int8 weights and int32 biases, and the
update modes that decide what happens to the part of a step smaller than one quantization
step. The numpy twin, bit for bit, of firmware/include/tt_update_rules.h.

The gradient w.r.t. an int8 weight is G_Wq = s_W * G_W (G_W: w.r.t. the real weight);
QAS multiplies it by s_W^-2, so the step on W_q is G_W / s_W: the very step fp32 SGD
takes, expressed in quantization steps. Biases (scale s_b = s_W * s_x): G_b / s_b.
All arithmetic is float32, in the order of firmware/include/tt_train_kernels.h:
    u = g / s [+ wd * v];  m = mu * m + u (momentum);  step = lr * m
and then, by update mode (UPDATE_MODES):
    nearest:    q' = sat(round_half_away(q - step)), exact; v = q
    shadow:     shadow = clamp(shadow - step, qmin, qmax), q' = round(shadow), v = shadow
    residual:   256 q + r - 256 step rounded exactly and split into q' (nearest) and
                r' in [-128, 127] (8 bits of fraction per element); v = q + r / 256
    stochastic: q' = floor(q - step) + 1 with probability frac(q - step), drawn from the
                counter-based PRNG (hash of a Weyl sequence); v = q
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Graph, Op
from ..ops import unit

F32 = np.float32
# A trained int32 bias stays within +-2^30 (TT_QAS_BIAS_MIN / _MAX of tt_update_rules.h; a
# test checks they agree), not the whole int32 range: then no int8 kernel's accumulator can
# overflow. The reference kernels (and their SIMD variants, which compute the sum exactly
# and add the bias with QADD / VQADD) add the bias to the sum of (x - zp) * w with
# saturation, LiteRT's (and the numpy reference) with a plain (wrapping) add: the two agree
# exactly as long as no sum leaves int32, i.e. |bias| + BIAS_ACC_PER_TAP * K <= 2^31 - 1 for K weights
# per output. With |bias| <= 2^30 that holds up to K = MAX_BIAS_TAPS (32,896 inputs per
# output); training a bias of a larger layer is refused (check_trainable_bias). A bias at
# 2^30 already pins its output at the int8 limit for any realistic scale, so the range
# costs nothing the training could use.
BIAS_LIMIT = 2 ** 30
BIAS_ACC_PER_TAP = 255 * 128            # |x - zp| <= 255, |w| <= 128
MAX_BIAS_TAPS = (2 ** 31 - 1 - BIAS_LIMIT) // BIAS_ACC_PER_TAP
INT_RANGE = {"int8": (-127, 127), "int32": (-BIAS_LIMIT, BIAS_LIMIT)}


def check_trainable_bias(graph: Graph, op: Op) -> None:
    """Refuse to train the int32 bias of a layer with more than MAX_BIAS_TAPS weights per
    output (its accumulator could overflow at the bias range's limit)."""
    w, b = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
    taps = w.size // max(b.size, 1)
    if taps > MAX_BIAS_TAPS:
        raise UnsupportedError(op.name, f"training the int8 layer's bias with {taps:,} weights per output "
                                        f"(at most {MAX_BIAS_TAPS:,}: beyond, a bias at the trained range's "
                                        f"limit of +-2^30 could overflow the int32 accumulator)")


@dataclass(frozen=True)
class UpdateMode:
    name: str
    code: int                   # TT_UPDATE_* of firmware/include/tt_train_kernels.h
    bytes_per_element: int      # SRAM kept per trained element, besides the parameter
    summary: str


UPDATE_MODES = {m.name: m for m in (
    UpdateMode("nearest", 1, 0, "round each step to the nearest quantization step (a step under "
                                "half of one is lost)"),
    UpdateMode("shadow", 2, 4, "an fp32 copy of every trained element keeps the sub-step progress"),
    UpdateMode("residual", 3, 1, "8 more bits of fraction per trained element (int8: 2x the bytes)"),
    UpdateMode("stochastic", 4, 0, "stochastic rounding from an on-device PRNG (unbiased; "
                                   "4 bytes of PRNG state)"),
)}
FLOAT_UPDATE = UpdateMode("float", 0, 0, "float32 parameters: plain SGD")
MASTER_UPDATE = UpdateMode("master", 5, 4, "half parameters with an fp32 master copy (mixed precision): "
                                           "SGD on the copy, the parameter its rounding")
DEFAULT_UPDATE = "stochastic"        # chosen from bench/bench_learning.py: see docs/training.md
DEFAULT_UPDATE_SEED = 0x2545F491     # the PRNG's compiled-in seed (any value works)
RNG_STATE_BYTES = 4
RNG_GAMMA = np.uint32(0x9E3779B9)


def resolve_update(update: str | None, quantized: bool) -> str:
    """The update mode of a program: `update` checked, or the default for the graph."""
    if not quantized:
        if update not in (None, FLOAT_UPDATE.name):
            raise TinyTrainError(f"--update {update}: update modes are for int8 parameters; "
                                 "this model is float32 (its parameters train by plain SGD)")
        return FLOAT_UPDATE.name
    if update is None:
        return DEFAULT_UPDATE
    if update not in UPDATE_MODES:
        raise TinyTrainError(f"unknown update mode {update!r}: expected one of {', '.join(UPDATE_MODES)}")
    return update


def update_mode(name: str) -> UpdateMode:
    if name == MASTER_UPDATE.name:
        return MASTER_UPDATE
    return FLOAT_UPDATE if name == FLOAT_UPDATE.name else UPDATE_MODES[name]


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


# --- the element-wise rules of tt_update_rules.h (vectorized) -------------------------------

def rng_hash(x: np.ndarray) -> np.ndarray:
    """tt_rng_hash (lowbias32) on uint32."""
    x = np.asarray(x, np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def rng_uniform(state: int, n: int) -> np.ndarray:
    """Draws 0..n-1 of an update starting at `state` (tt_rng_uniform): float32 in [0, 1)."""
    with np.errstate(over="ignore"):
        e = np.arange(1, n + 1, dtype=np.uint64).astype(np.uint32)
        x = rng_hash(np.uint32(state) + e * RNG_GAMMA)
    return ((x >> np.uint32(8)).astype(F32) * F32(2.0 ** -24)).astype(F32)


def rng_advance(state: int, n: int) -> int:
    """tt_update_advance: the state after an update of n elements."""
    return int((int(state) + n * int(RNG_GAMMA)) % 2 ** 32)


def _split(step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tt_step_split: floor and fraction of the step limited to +-2^40 (both exact)."""
    big = F32(2.0 ** 40)
    s = np.clip(step, -big, big)
    whole = np.floor(s).astype(F32)
    return whole, (s - whole).astype(F32)


def round_exact(v: np.ndarray, step: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """tt_round_exact_s64: round_half_away(v - step) without rounding the difference, saturated
    (int64 v; NaN step: v)."""
    v = np.asarray(v, np.int64)
    step = np.asarray(step, F32)
    nan = np.isnan(step)
    whole, frac = _split(np.where(nan, F32(0), step))
    m = v - whole.astype(np.int64)
    m = np.where((frac > F32(0.5)) | ((frac == F32(0.5)) & (m < 1)), m - 1, m)
    return np.where(nan, v, np.clip(m, lo, hi))


def round_stochastic(q: np.ndarray, step: np.ndarray, u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """tt_qas_round_stochastic."""
    q = np.asarray(q, np.int64)
    step = np.asarray(step, F32)
    nan = np.isnan(step)
    whole, frac = _split(np.where(nan, F32(0), step))
    m = q - whole.astype(np.int64)
    m = np.where(frac > u, m - 1, m)
    return np.where(nan, q, np.clip(m, lo, hi))


def residual_step(q: np.ndarray, r: np.ndarray, step: np.ndarray, lo: int, hi: int):
    """tt_qas_residual_step: (new q, new r)."""
    q = np.asarray(q, np.int64)
    step = np.asarray(step, F32)
    v = q * 256 + np.asarray(r, np.int64)
    with np.errstate(over="ignore"):
        v = round_exact(v, (step * F32(256)).astype(F32), lo * 256 - 128, hi * 256 + 127)
    qn = (v + 128) // 256                       # floor division, as tt_floor_div256
    nan = np.isnan(step)
    return np.where(nan, q, qn), np.where(nan, r, v - qn * 256).astype(np.int8)


def shadow_step(q: np.ndarray, shadow: np.ndarray, step: np.ndarray, lo: int, hi: int):
    """tt_qas_shadow_step: (new q, new shadow)."""
    step = np.asarray(step, F32)
    nan = np.isnan(step)
    v = np.clip((shadow - np.where(nan, F32(0), step)).astype(F32), F32(lo), F32(hi)).astype(F32)
    v = np.where(nan, shadow, v).astype(F32)
    r = round_half_away(v.astype(np.float64))
    return np.where(nan, q, np.clip(r, lo, hi)).astype(np.int64), v


def qas_step(q, grad, s, lr, momentum, weight_decay, m, mode: str, state, lo: int, hi: int):
    """tt_qas_rule on arrays of one update (element e at flat index e). m (momentum, float32,
    updated in place) may be None; state: the shadow (float32) or residual (int8) array,
    updated in place, or for "stochastic" the PRNG state (int). Returns (new q, new PRNG
    state or None)."""
    q = np.asarray(q).astype(np.int64)
    if mode == "shadow":
        v = state
    elif mode == "residual":
        v = (q.astype(F32) + state.astype(F32) * F32(2.0 ** -8)).astype(F32)
    else:
        v = q.astype(F32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        g = (np.asarray(grad, F32) / s).astype(F32)
        g = (g + F32(weight_decay) * v).astype(F32)
        if m is not None:
            m[...] = (F32(momentum) * m + g).astype(F32)
            g = m
        step = (F32(lr) * g).astype(F32)
    if mode == "shadow":
        new, state[...] = shadow_step(q, state, step, lo, hi)
        return new, None
    if mode == "residual":
        new, state[...] = residual_step(q, state, step, lo, hi)
        return new, None
    if mode == "stochastic":
        u = rng_uniform(state, q.size).reshape(q.shape)
        return round_stochastic(q, step, u, lo, hi), rng_advance(state, q.size)
    return round_exact(q, step, lo, hi), None


def update_int(trainer, op: Op, name: str, p: np.ndarray, grad: np.ndarray, sub) -> None:
    """In-place QAS-SGD step on the int8/int32 parameter `name` (its trained part `sub`),
    with the program's update mode; the update state lives in the trainer."""
    t = trainer.g.tensors[name]
    s = np.broadcast_to(scales(trainer.g, op, name), p.shape)[sub]
    cur = p[sub]
    lo, hi = INT_RANGE[t.dtype]
    mode = trainer.prog.update
    m = trainer.state.setdefault(name, np.zeros(cur.shape, F32)) if trainer.momentum else None
    if mode == "shadow":
        state = trainer.shadow.setdefault(name, cur.astype(F32))
    elif mode == "residual":
        state = trainer.residual.setdefault(name, np.zeros(cur.shape, np.int8))
    elif mode == "stochastic":
        state = trainer.rng_state
    else:
        state = None
    new, rng = qas_step(cur, grad, s, trainer.lr, trainer.momentum, trainer.weight_decay, m, mode,
                        state, lo, hi)
    if rng is not None:
        trainer.rng_state = rng
    p[sub] = new.astype(p.dtype)
