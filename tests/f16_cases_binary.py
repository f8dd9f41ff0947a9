"""Kernel-harness cases of the half-precision mul, maximum and minimum kernels (tests/kernel_harness.py):
each portable kernel as `ref`, checked byte for byte against its numpy model (tinytrain/ops/f16.py),
and its Helium variant as `var` where it has one (the same bits: the harness compares them).
Used by tests/test_fp16_binary.py (both boards) and bench/bench_fp16_ops.py."""
from __future__ import annotations

import numpy as np

from tinytrain.ops import f16
from tinytrain.ops.elementwise import bcast_fields

from f16_cases import _bcast_decl, _half, _out_bytes
from kernel_harness import Case

F16 = np.float16
CODES = {"none": 0, "relu": 1, "relu6": 2}


def _mul32(a, b):
    return (a.astype(np.float64) * b).astype(np.float32)


def _values(rng, shape, scale=4.0):
    return (scale * rng.standard_normal(shape)).astype(F16)


def _specials(a: np.ndarray, values) -> np.ndarray:
    """a with its first elements replaced by `values` (edge cases at the start of the run)."""
    flat = a.reshape(-1).copy()
    v = np.asarray(values, F16)[:flat.size]
    flat[:v.size] = v
    return flat.reshape(a.shape)


def _grad_case(name, fn_ref, fn_var, bc_fields, other, gy, old, acc, expected, nx):
    """A gradient Case: tt_out starts as the old gradient (nx halves), then the kernel
    (fn_ref / fn_var: "name(")."""
    g = Case(name, out_bytes=2 * nx, macs=gy.size)
    g.expected = _out_bytes(expected)
    g.pre = f"memcpy(tt_out, {_half(g, 'old', old)}, {2 * nx});"
    g.decls.append('#include "tt_train_kernels.h"')
    args = f"{_bcast_decl(g, bc_fields)}, {_half(g, 'o', other)}, {_half(g, 'gy', gy)}, {acc}, (tt_f16 *)tt_out"
    g.ref = f"{fn_ref}{args});"
    g.var = f"{fn_var}{args});" if fn_var else None
    return g


def mul_cases(shape, other_shape=None, seed=0, act="none", acc=0, specials=False):
    """tt_mul_f16 (equal shapes) or tt_mul_bcast_f16, with their Helium variants, and the
    gradients of both operands: tt_mul_grad_input_f16 (and its Helium variant) for an operand
    of the output's shape, tt_mul_grad_bcast_f16 for one that broadcasts (either may)."""
    from tinytrain.ops.elementwise import broadcast_shape
    rng = np.random.default_rng(seed)
    shape, other_shape = tuple(shape), tuple(other_shape if other_shape is not None else shape)
    out = broadcast_shape(shape, other_shape)
    a, b = _values(rng, shape), _values(rng, other_shape, 2.0)
    if specials == "finite":     # zeros of both signs, subnormals, products under 2^-24 and over 65504
        a = _specials(a, [0.0, -0.0, 3e-6, 1e-3, 300.0, -6e-8, 5e-5, 2.0, -5.0, 6e-5, 1e-7, 60000.0])
        b = _specials(b, [-2.0, 0.5, 0.25, 1e-4, 400.0, 2e-7, -3e-5, 6e-8, -1e-7, -7e-6, 0.0, 3.0])
    elif specials:      # zeros of both signs, subnormal operands and products, overflow, inf, NaN
        a = _specials(a, [0.0, -0.0, 3e-6, 1e-3, 300.0, np.inf, -np.inf, np.nan, 2.0, -5.0, 6e-5])
        b = _specials(b, [-2.0, 0.5, 0.25, 1e-4, 400.0, 2.0, 0.5, 1.0, np.nan, 6.0, -7e-6])
    n = int(np.prod(out))
    a_full, b_full = (np.broadcast_to(v.reshape(s_), out) for v, s_ in ((a, shape), (b, other_shape)))
    name = f"mul {shape} {other_shape} {act}"
    fwd = Case(f"{name} forward", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(f16.binary(a_full, b_full, _mul32, act))
    if other_shape == shape:
        args = f"{_half(fwd, 'a', a)}, {_half(fwd, 'b', b)}, {n}, {CODES[act]}, (tt_f16 *)tt_out"
        fwd.ref, fwd.var = f"tt_mul_f16({args});", f"tt_mul_f16_mve({args});"
    else:
        args = (f"{_half(fwd, 'a', a)}, {_half(fwd, 'b', b)}, {_bcast_decl(fwd, bcast_fields(shape, other_shape, out))}, "
                f"{CODES[act]}, (tt_f16 *)tt_out")
        fwd.ref, fwd.var = f"tt_mul_bcast_f16({args});", f"tt_mul_bcast_f16_mve({args});"
    cases = [fwd]
    gy = _values(rng, out, 0.1)
    if specials == "finite":
        gy = _specials(gy, [1e-7, -3e-6, 5e-5, 2e-3, 300.0, 6e-8, -0.0, 0.0, 1e-4, 2.0, 7e-6, 0.5])
    elif specials:
        gy = _specials(gy, [1.0, 1.0, 1e-3, 2e-3, 300.0, 0.5, -0.5, 1.0, 1.0, -0.0, 1e-2])
    for what, xs, os_, other, other_full in (("a", shape, other_shape, b, b_full), ("b", other_shape, shape, a, a_full)):
        f = bcast_fields(xs, os_, out)
        nx = int(np.prod(xs))
        old = _values(rng, xs, 0.1)
        d = f16.round_grad(f16.mul_grad(gy, other_full, f, xs), old if acc else None)
        if nx == n:
            fn, var = "tt_mul_grad_input_f16(", "tt_mul_grad_input_f16_mve("
        else:
            fn, var = "tt_mul_grad_bcast_f16(", "tt_mul_grad_bcast_f16_mve("
        cases.append(_grad_case(f"{name} grad of {what} (acc {acc})", fn, var, f, other, gy, old, acc, d, nx))
    return cases


# the kernels as called, written out (tests/test_kernel_selection.py reads the Helium ones here)
SELECT_KERNELS = {
    "maximum": dict(fwd=("tt_maximum_f16(", "tt_maximum_f16_mve("), bcast=("tt_maximum_bcast_f16(", "tt_maximum_bcast_f16_mve("),
                    grad=("tt_maximum_grad_input_f16(", "tt_maximum_grad_input_f16_mve("),
                    grad_bcast=("tt_maximum_grad_bcast_f16(", None)),
    "minimum": dict(fwd=("tt_minimum_f16(", "tt_minimum_f16_mve("), bcast=("tt_minimum_bcast_f16(", "tt_minimum_bcast_f16_mve("),
                    grad=("tt_minimum_grad_input_f16(", "tt_minimum_grad_input_f16_mve("),
                    grad_bcast=("tt_minimum_grad_bcast_f16(", None)),
}


def select_cases(kind, shape, other_shape=None, seed=0, acc=0, specials=True):
    """tt_maximum_f16 / tt_minimum_f16 (or _bcast) with their Helium variants, and the
    gradients of both operands (the first wins ties; either may broadcast): many ties (small
    integers), zeros of both signs, inf and NaN on either side."""
    from tinytrain.ops.elementwise import broadcast_shape
    rng = np.random.default_rng(seed)
    minimum = kind == "minimum"
    shape, other_shape = tuple(shape), tuple(other_shape if other_shape is not None else shape)
    out = broadcast_shape(shape, other_shape)
    a = rng.integers(-3, 4, shape).astype(F16)
    b = rng.integers(-3, 4, other_shape).astype(F16)
    if specials:
        a = _specials(a, [0.0, -0.0, np.nan, 1.0, np.nan, np.inf, -np.inf, 3e-6, 2.0, -1.0])
        b = _specials(b, [-0.0, 0.0, 1.0, np.nan, np.nan, 5.0, -np.inf, 2e-6, 2.0, -np.inf])
    n = int(np.prod(out))
    a_full, b_full = (np.broadcast_to(v.reshape(s_), out) for v, s_ in ((a, shape), (b, other_shape)))
    name = f"{kind} {shape} {other_shape}"
    fwd = Case(f"{name} forward", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(f16.select(a_full, b_full, minimum))
    if other_shape == shape:
        args = f"{_half(fwd, 'a', a)}, {_half(fwd, 'b', b)}, {n}, (tt_f16 *)tt_out"
        ref, var = SELECT_KERNELS[kind]["fwd"]
        fwd.ref, fwd.var = f"{ref}{args});", f"{var}{args});"
    else:
        args = (f"{_half(fwd, 'a', a)}, {_half(fwd, 'b', b)}, "
                f"{_bcast_decl(fwd, bcast_fields(shape, other_shape, out))}, (tt_f16 *)tt_out")
        ref, var = SELECT_KERNELS[kind]["bcast"]
        fwd.ref, fwd.var = f"{ref}{args});", f"{var}{args});"
    cases = [fwd]
    gy = _values(rng, out, 0.5)
    for first, x, other, xs, os_, x_full, o_full in ((True, a, b, shape, other_shape, a_full, b_full),
                                                     (False, b, a, other_shape, shape, b_full, a_full)):
        f = bcast_fields(xs, os_, out)
        nx = int(np.prod(xs))
        old = _values(rng, xs, 0.5)
        d = f16.round_grad(f16.select_grad(gy, x_full, o_full, first, minimum, f, xs), old if acc else None)
        fn, var = SELECT_KERNELS[kind]["grad" if nx == n else "grad_bcast"]
        cases.append(_select_grad_case(f"{name} grad of {'a' if first else 'b'} (acc {acc})", fn, var, f, x, other,
                                       int(first), gy, old, acc, d, nx))
    return cases


def _select_grad_case(name, fn_ref, fn_var, fields, x, other, first, gy, old, acc, expected, nx):
    g = Case(name, out_bytes=2 * nx, macs=gy.size)
    g.expected = _out_bytes(expected)
    g.pre = f"memcpy(tt_out, {_half(g, 'old', old)}, {2 * nx});"
    g.decls.append('#include "tt_train_kernels.h"')
    args = (f"{_bcast_decl(g, fields)}, {_half(g, 'x', x)}, {_half(g, 'o', other)}, {first}, {_half(g, 'gy', gy)}, "
            f"{acc}, (tt_f16 *)tt_out")
    g.ref = f"{fn_ref}{args});"
    g.var = f"{fn_var}{args});" if fn_var else None
    return g


def mul_op_cases() -> list:
    cases = []
    cases += mul_cases((1, 5, 6, 11), act="relu", specials=True)                 # a tail of 2 lanes
    cases += mul_cases((1, 4, 4, 16), act="relu6", seed=1, acc=1)
    cases += mul_cases((1, 5, 3, 7), (7,), seed=2, act="none", acc=1)           # per-channel constant
    cases += mul_cases((1, 4, 5, 12), (1, 1, 1, 12), seed=3, act="relu")        # squeeze-excite gate
    cases += mul_cases((1, 4, 5, 12), (1, 1, 1, 12), seed=4, act="none", acc=1)
    cases += mul_cases((1, 3, 4, 5), (1, 3, 1, 1), seed=5, act="none", acc=1)   # per-row factor
    cases += mul_cases((1, 4, 4, 6), (), seed=6, act="relu", acc=1)             # a scalar
    cases += mul_cases((1, 6, 5, 1), (1, 6, 5, 1), seed=7, acc=1)               # one channel
    cases += mul_cases((1, 1, 1, 9), (1, 1, 1, 9), seed=8, act="relu6", specials=True)
    cases += mul_cases((1, 4, 1, 1), (1, 1, 5, 6), seed=9, act="relu", acc=1)    # both broadcast
    cases += mul_cases((1, 10), (10,), seed=16, acc=1)                          # after a dense layer
    cases += mul_cases((1, 3, 5, 12), (1, 1, 1, 12), seed=18, specials=True)    # inf, NaN: the portable sums
    cases += mul_cases((1, 4, 3, 20), (1, 4, 1, 20), seed=19, acc=1)            # summed over w only
    cases += mul_cases((1, 2, 3, 12), (1, 1, 1, 12), seed=25, acc=1, specials="finite")    # subnormals
    cases += mul_cases((1, 2, 3, 12), (1, 2, 3, 12), seed=26, act="relu", specials="finite")
    cases += mul_cases((1, 1, 3, 9), (1, 2, 1, 9), seed=24, act="relu")         # both broadcast, channels kept
    return cases


def select_op_cases() -> list:
    cases = []
    for kind in ("maximum", "minimum"):
        cases += select_cases(kind, (1, 5, 6, 11), seed=10)                       # a tail, ties, NaN
        cases += select_cases(kind, (1, 4, 4, 16), seed=11, acc=1)
        cases += select_cases(kind, (1, 5, 3, 7), (7,), seed=12, acc=1)            # per-channel constant
        cases += select_cases(kind, (1, 4, 5, 12), (1, 1, 1, 12), seed=13)        # squeeze-excite-like
        cases += select_cases(kind, (1, 3, 4, 5), (1, 3, 1, 1), seed=14, acc=1)   # per-row
        cases += select_cases(kind, (1, 4, 4, 6), (), seed=15, acc=1, specials=False)   # a scalar
        cases += select_cases(kind, (1, 1, 5, 6), (1, 4, 1, 1), seed=17, acc=1)   # both broadcast
    return cases


def op_cases() -> list:
    return mul_op_cases() + select_op_cases() + add_nan_cases()


# --- bench/bench_fp16_ops.py: the rows of these kernels, with their float32 twins --------------

F32_KERNELS = ("mul/mul_f32.c", "mul/mul_backward.c", "maximum/maximum_f32.c", "maximum/maximum_backward.c")


def _float(case: Case, what: str, a) -> str:
    return f"(const float *){case.array(what, np.asarray(a, np.float32).view(np.uint32))}"


def _f32_twin(label, n_out, call, arrays, bc=None):
    """The float32 kernel on the same values: `call` formats {names} of `arrays` and {bc}."""
    c = Case(f"{label} f32", out_bytes=4 * n_out, macs=n_out)
    names = {k: _float(c, k, v) for k, v in arrays.items()}
    if bc is not None:
        names["bc"] = _bcast_decl(c, bc)
    c.decls.append('#include "tt_train_kernels.h"')
    c.ref = call.format(**names)
    return c


def bench_rows() -> list:
    """(label, f16 case, f32 case or None) on a 16x16x32 plane."""
    shape, n = (1, 16, 16, 32), 16 * 16 * 32
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    gate, gy = rng.standard_normal((1, 1, 1, 32)), 0.1 * rng.standard_normal(shape)
    full = bcast_fields(shape, shape, shape)
    se = bcast_fields(shape, (1, 1, 1, 32), shape)
    per_c = bcast_fields(shape, (32,), shape)
    rows = []
    mul = mul_cases(shape, act="relu", seed=20)
    rows.append(("mul 16x16x32 (relu)", mul[0],
                 _f32_twin("mul", n, "tt_mul_f32({a}, {b}, %d, 1, (float *)tt_out);" % n, dict(a=a, b=b))))
    rows.append(("mul grad of an operand (x * y)", mul[1],
                 _f32_twin("mul grad", n, "tt_mul_grad_input_f32({bc}, {o}, {gy}, 0, (float *)tt_out);",
                           dict(o=b, gy=gy), full)))
    se_cases = mul_cases(shape, (1, 1, 1, 32), seed=21)
    rows.append(("mul by a (1,1,1,32) gate (squeeze-excite)", se_cases[0],
                 _f32_twin("se", n, "tt_mul_bcast_f32({a}, {g}, {bc}, 0, (float *)tt_out);", dict(a=a, g=gate), se)))
    rows.append(("  its grad of the plane", se_cases[1],
                 _f32_twin("se grad", n, "tt_mul_grad_input_f32({bc}, {g}, {gy}, 0, (float *)tt_out);",
                           dict(g=gate, gy=gy), se)))
    rows.append(("  its grad of the gate (sum over 16x16)", se_cases[2], None))
    mx = select_cases("maximum", shape, seed=22, specials=False)
    rows.append(("maximum 16x16x32", mx[0],
                 _f32_twin("max", n, "tt_maximum_f32({a}, {b}, %d, (float *)tt_out);" % n, dict(a=a, b=b))))
    rows.append(("maximum grad of the first operand", mx[1],
                 _f32_twin("max grad", n, "tt_maximum_grad_input_f32({bc}, {a}, {b}, 1, {gy}, 0, (float *)tt_out);",
                           dict(a=a, b=b, gy=gy), full)))
    mn = select_cases("minimum", shape, (32,), seed=23, specials=False)
    rows.append(("minimum with a per-channel constant", mn[0],
                 _f32_twin("min c", n, "tt_minimum_bcast_f32({a}, {c}, {bc}, (float *)tt_out);",
                           dict(a=a, c=gate.reshape(32)), per_c)))
    rows.append(("  its grad of the plane", mn[1], None))
    return rows


def add_nan_cases() -> list:
    """add's Helium variant with a fused relu / relu6 on NaN sums and zeros of both signs (the
    portable kernel keeps a NaN: C's `v < 0` is false for it, MVE's `lt` is true)."""
    a = np.array([np.nan, 1.0, -0.0, -0.0, np.inf, 5.0, -3.0, np.nan, 2.0, -1.0, 0.5], F16)
    b = np.array([1.0, np.nan, -0.0, 0.0, -np.inf, 2.0, 1.0, np.nan, 5.0, 1.0, -0.5], F16)
    a[4], b[4] = 1.0, 2.0           # no inf - inf: the default NaN's sign differs between Arm and x86
    cases = []
    for act in ("relu", "relu6"):
        c = Case(f"add NaN {act}", out_bytes=2 * a.size, macs=a.size)
        c.expected = _out_bytes(f16.binary(a, b, lambda x, y: (x.astype(np.float64) + y).astype(np.float32), act))
        args = f"{_half(c, 'a', a)}, {_half(c, 'b', b)}, {a.size}, {CODES[act]}, (tt_f16 *)tt_out"
        c.ref, c.var = f"tt_add_f16({args});", f"tt_add_f16_mve({args});"
        cases.append(c)
    return cases
