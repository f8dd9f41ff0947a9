"""Kernel-harness cases of the half-precision activations (tests/kernel_harness.py): leaky
relu, prelu, hard swish, logistic and tanh, forward and input gradient (stored and
accumulated). Each case's output is checked against the op unit's numpy model byte for byte;
where a Helium variant exists it runs as `var` (the same bits as the portable kernel, or,
for hard swish, checked against its own model as `ref`). Used by tests/test_fp16_act.py
and bench/bench_fp16_ops.py."""
from __future__ import annotations

import numpy as np

from tinytrain.ops import f16
from tinytrain.ops.elementwise import bcast_fields
from tinytrain.ops.hard_swish import (hard_swish_f16, hard_swish_f16_mve, hard_swish_grad_f16,
                                      hard_swish_grad_f16_mve)
from tinytrain.ops.leaky_relu import leaky_relu_f16, leaky_relu_grad_f16
from tinytrain.ops.prelu import prelu_f16, prelu_grad_f16

from f16_cases import _bcast_decl, _half, _out_bytes, kernels  # noqa: F401  (kernels: every _f16 file)
from kernel_harness import Case

F16 = np.float16

# Inputs every activation sees first: zeros of both signs, subnormals (products that stay
# subnormal or underflow to zero), the largest half, infinities and NaNs (one negative, with a payload).
EDGES = np.array([0.0, -0.0, 3e-6, -3e-6, 6e-8, -6e-8, 65504.0, -65504.0, np.inf, -np.inf, np.nan,
                  -1e-3, 1e-3, -2.5, 2.5, np.nan], F16)
EDGES[-1:] = np.array([0xFE01], np.uint16).view(F16)          # a negative NaN with a payload


def _values(rng, n, scale=4.0, edges=True) -> np.ndarray:
    x = (scale * rng.standard_normal(n)).astype(F16)
    if edges:
        k = min(n, len(EDGES))
        x[:k] = EDGES[:k]
    return x


def _grad_case(name, n, expected_f32, old, acc) -> Case:
    """A gradient case: tt_out starts as `old`, the kernel stores (acc 0) or accumulates."""
    c = Case(f"{name} (acc {acc})", out_bytes=2 * n, macs=n)
    c.expected = _out_bytes(f16.round_grad(expected_f32, old if acc else None))
    c.pre = f"memcpy(tt_out, {_half(c, 'old', old)}, {2 * n});"
    c.decls.append('#include "tt_train_kernels.h"')
    return c


def _alpha_bits(a) -> str:
    return f"(tt_f16)0x{int(np.asarray(a, F16).view(np.uint16)):04x}u"


def leaky_relu_cases(n=37, alpha=0.2, seed=0, helium=True):
    """Forward and input gradient (acc 0 / 1) of leaky relu, n elements (a tail of lanes)."""
    rng = np.random.default_rng(seed)
    a = F16(np.float32(alpha))
    x = _values(rng, n)
    gy = _values(rng, n, 0.5, edges=False)
    gy[:min(n, 4)] = np.array([3e-6, -6e-8, 65504.0, np.inf], F16)[:min(n, 4)]
    old = _values(rng, n, 0.5, edges=False)
    fwd = Case(f"leaky relu n{n} alpha {alpha}", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(leaky_relu_f16(x, a))
    args = f"{_half(fwd, 'x', x)}, {n}, {_alpha_bits(a)}, (tt_f16 *)tt_out"
    fwd.ref = f"tt_leaky_relu_f16({args});"
    fwd.var = f"tt_leaky_relu_f16_mve({args});" if helium else None
    cases = [fwd]
    for acc in (0, 1):
        g = _grad_case(f"leaky relu n{n} alpha {alpha} grad input", n, leaky_relu_grad_f16(x, gy, a), old, acc)
        args = f"{n}, {_half(g, 'x', x)}, {_alpha_bits(a)}, {_half(g, 'gy', gy)}, {acc}, (tt_f16 *)tt_out"
        g.ref = f"tt_leaky_relu_grad_input_f16({args});"
        g.var = f"tt_leaky_relu_grad_input_f16_mve({args});" if helium else None
        cases.append(g)
    return cases


def prelu_cases(shape=(1, 5, 4, 11), alpha_shape=(11,), seed=0, helium=True):
    """Forward and input gradient (acc 0 / 1) of prelu: equal shapes (the flat kernel) or alpha
    broadcast (per channel, along c, one value for all)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    x = _values(rng, n).reshape(shape)
    alpha = (0.5 * rng.standard_normal(alpha_shape)).astype(F16)
    alpha.reshape(-1)[:2] = np.array([-1.5, 0.25], F16)[:min(2, alpha.size)]
    gy = _values(rng, n, 0.5, edges=False).reshape(shape)
    old = _values(rng, n, 0.5, edges=False).reshape(shape)
    ab = np.broadcast_to(alpha, shape)
    f = bcast_fields(shape, alpha_shape, shape)
    flat = alpha.size == n              # the op's flat kernel (Prelu.broadcasts is False)
    name = f"prelu {shape[1:]} alpha {alpha_shape}"
    fwd = Case(f"{name} forward", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(prelu_f16(x, ab))
    if flat:
        args = f"{_half(fwd, 'x', x)}, {_half(fwd, 'alpha', alpha)}, {n}, (tt_f16 *)tt_out"
        fwd.ref, fwd.var = f"tt_prelu_f16({args});", f"tt_prelu_f16_mve({args});"
    else:
        args = f"{_half(fwd, 'x', x)}, {_half(fwd, 'alpha', alpha)}, {_bcast_decl(fwd, f)}, (tt_f16 *)tt_out"
        fwd.ref, fwd.var = f"tt_prelu_bcast_f16({args});", f"tt_prelu_bcast_f16_mve({args});"
    if not helium:
        fwd.var = None
    cases = [fwd]
    for acc in (0, 1):
        g = _grad_case(f"{name} grad input", n, prelu_grad_f16(x, ab, gy), old, acc)
        args = (f"{_bcast_decl(g, f)}, {_half(g, 'x', x)}, {_half(g, 'alpha', alpha)}, {_half(g, 'gy', gy)}, "
                f"{acc}, (tt_f16 *)tt_out")
        g.ref = f"tt_prelu_grad_input_f16({args});"
        g.var = f"tt_prelu_grad_input_f16_mve({args});" if helium else None
        cases.append(g)
    return cases


# hard swish's kinks and clamps: +-3 and their neighbours, -1.5 (a zero slope), 3 - 2^-9 ...
HARD_SWISH_POINTS = np.array([-3.0, 3.0, -3.001953125, -2.998046875, 2.998046875, 3.001953125, -1.5, -6.0,
                              6.0, 0.5, -0.5, 1e-4], F16)


def hard_swish_cases(n=45, seed=0, helium=True):
    """Forward and input gradient (acc 0 / 1) of hard swish: the portable kernels against
    their model, and on Helium the _mve kernels against theirs."""
    rng = np.random.default_rng(seed)
    x = _values(rng, n, 2.5)
    k = len(EDGES)
    x[k:k + len(HARD_SWISH_POINTS)] = HARD_SWISH_POINTS[:max(0, min(len(HARD_SWISH_POINTS), n - k))]
    gy = _values(rng, n, 0.5, edges=False)
    gy[:min(n, 4)] = np.array([np.inf, -np.inf, 65504.0, 3e-6], F16)[:min(n, 4)]   # x 0, -0, subnormals
    if n > 9:
        gy[8:10] = np.array([np.inf, -np.inf], F16)       # x +-inf: dy selected, 0 selected (not 0 * inf)
    old = _values(rng, n, 0.5, edges=False)
    kinds = [("", "tt_hard_swish_f16(", "tt_hard_swish_grad_input_f16(", hard_swish_f16, hard_swish_grad_f16)]
    if helium:
        kinds.append(("_mve", "tt_hard_swish_f16_mve(", "tt_hard_swish_grad_input_f16_mve(", hard_swish_f16_mve,
                      hard_swish_grad_f16_mve))
    cases = []
    for sfx, fwd_fn, grad_fn, fwd_model, grad_model in kinds:
        fwd = Case(f"hard swish{sfx} n{n}", out_bytes=2 * n, macs=n)
        fwd.expected = _out_bytes(fwd_model(x))
        fwd.ref = f"{fwd_fn}{_half(fwd, 'x', x)}, {n}, (tt_f16 *)tt_out);"
        cases.append(fwd)
        for acc in (0, 1):
            g = _grad_case(f"hard swish{sfx} n{n} grad input", n, grad_model(x, gy), old, acc)
            g.ref = f"{grad_fn}{n}, {_half(g, 'x', x)}, {_half(g, 'gy', gy)}, {acc}, (tt_f16 *)tt_out);"
            cases.append(g)
    return cases


# logistic / tanh: tanh's polynomial / exponential boundary (1/8 and its neighbours), values
# whose results round to 0 or +-1 in half, tt_expf's overflow and underflow bounds
LUT_POINTS = np.array([0.125, -0.125, 0.12487793, -0.12487793, 0.12524414, 8.5, -8.5, 17.5, -17.5, 4.5,
                       -4.5, 89.0, -104.0, 1e-4], F16)


def lut_cases(kind, n=41, seed=0):
    """Forward (tt_<kind>_f16) and input gradient from the saved output (acc 0 / 1) of
    logistic or tanh, against the op unit's float16 reference and its float32 gradient."""
    from tinytrain.ops import unit
    u = unit(kind)
    rng = np.random.default_rng(seed)
    x = _values(rng, n, 4.0)
    k = len(EDGES)
    x[k:k + len(LUT_POINTS)] = LUT_POINTS[:max(0, min(len(LUT_POINTS), n - k))]
    with np.errstate(over="ignore"):
        y = u.ref_f16(None, None, [x]).astype(F16)
    gy = _values(rng, n, 0.5, edges=False)
    # x = +-0: infinite gradients meet a factor of 1 or 1/4; nowhere a factor rounded to 0
    gy[:min(n, 4)] = np.array([np.inf, -np.inf, 65504.0, 6e-8], F16)[:min(n, 4)]
    old = _values(rng, n, 0.5, edges=False)
    fwd = Case(f"{kind} n{n}", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(y)
    fwd.ref = f"tt_{kind}_f16({_half(fwd, 'x', x)}, {n}, (tt_f16 *)tt_out);"
    cases = [fwd]
    with np.errstate(invalid="ignore", over="ignore"):
        dx = (f16.f32(gy) * u.grad_from_y(f16.f32(y))).astype(np.float32)
    for acc in (0, 1):
        g = _grad_case(f"{kind} n{n} grad input", n, dx, old, acc)
        g.ref = (f"tt_{kind}_grad_input_f16({n}, {_half(g, 'y', y)}, {_half(g, 'gy', gy)}, {acc}, "
                 "(tt_f16 *)tt_out);")
        cases.append(g)
    return cases


def prelu_strided_alpha_cases(seed=0, helium=True):
    """A tt_bcast the compiler never makes (alpha read every other element along the channels):
    the Helium prelu kernels hand it to the portable ones; both against the model."""
    rng = np.random.default_rng(seed)
    shape = (1, 3, 2, 5)
    n = int(np.prod(shape))
    x = _values(rng, n).reshape(shape)
    alpha = (0.5 * rng.standard_normal(10)).astype(F16)
    gy = _values(rng, n, 0.5, edges=False).reshape(shape)
    old = _values(rng, n, 0.5, edges=False).reshape(shape)
    f = bcast_fields(shape, (5,), shape)
    f["b_sc"] = 2
    ab = np.broadcast_to(alpha[::2], shape)
    fwd = Case("prelu alpha stride 2 forward", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(prelu_f16(x, ab))
    args = f"{_half(fwd, 'x', x)}, {_half(fwd, 'alpha', alpha)}, {_bcast_decl(fwd, f)}, (tt_f16 *)tt_out"
    fwd.ref, fwd.var = f"tt_prelu_bcast_f16({args});", f"tt_prelu_bcast_f16_mve({args});" if helium else None
    g = _grad_case("prelu alpha stride 2 grad input", n, prelu_grad_f16(x, ab, gy), old, 1)
    args = (f"{_bcast_decl(g, f)}, {_half(g, 'x', x)}, {_half(g, 'alpha', alpha)}, {_half(g, 'gy', gy)}, 1, "
            "(tt_f16 *)tt_out")
    g.ref = f"tt_prelu_grad_input_f16({args});"
    g.var = f"tt_prelu_grad_input_f16_mve({args});" if helium else None
    return [fwd, g]


def op_cases(helium=True) -> list:
    """Every case of the activations' kernels (tests/test_fp16_act.py runs them on both boards;
    helium=False: the portable kernels alone)."""
    cases = []
    cases += leaky_relu_cases(37, 0.2, seed=1, helium=helium)
    cases += leaky_relu_cases(8, -1.5, seed=2, helium=helium)          # negative alpha, overflow to inf
    cases += leaky_relu_cases(3, 0.01, seed=3, helium=helium)          # shorter than a vector
    cases += prelu_cases((1, 5, 4, 11), (11,), seed=4, helium=helium)             # per channel
    cases += prelu_cases((1, 3, 4, 6), (1, 3, 4, 6), seed=5, helium=helium)       # equal shapes
    cases += prelu_cases((1, 3, 4, 6), (4, 1), seed=6, helium=helium)             # along c: one a pixel
    cases += prelu_cases((1, 2, 3, 1), (1,), seed=7, helium=helium)               # one channel
    cases += prelu_cases((1, 3, 4, 6), (4, 6), seed=14, helium=helium)            # one a column and channel
    cases += prelu_cases((1, 2, 3, 32), (1, 1, 32), seed=15, helium=helium)       # whole blocks of 8
    cases += prelu_cases((1, 20), (20,), seed=8, helium=helium)                   # a vector
    cases += prelu_strided_alpha_cases(seed=13, helium=helium)
    cases += hard_swish_cases(45, seed=9, helium=helium)
    cases += hard_swish_cases(5, seed=10, helium=helium)
    for kind in ("logistic", "tanh"):
        cases += lut_cases(kind, 41, seed=11)
        cases += lut_cases(kind, 7, seed=12)
    return cases
