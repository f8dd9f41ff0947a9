"""Kernel-harness cases of the Helium variants that sum halves in float32 lanes (the bias
update, the global mean, average pooling: the portable kernels' bits): each Helium kernel
(`ref`) against its numpy model (tinytrain/ops/f16.py) byte for byte, and the portable kernel
(`var`) beside it, identical. The inputs hold lane tails, zeros of both signs, subnormal
halves, 65504, infinities and NaNs with payloads. Run by tests/test_fp16_sum_mve.py."""
from __future__ import annotations

import numpy as np

from tinytrain.ops import f16

from f16_cases import F16, _half, _out_bytes, _shape, _update
from kernel_harness import Case

SUBNORMALS = np.array([6e-8, -6e-8, 3e-6, -5.9e-5, 6.1e-5], F16)     # 2^-24 .. the largest subnormal


def _nan(payload: int, negative: bool = False) -> np.float16:
    return np.array([(0xFC00 if negative else 0x7C00) | 0x200 | payload], np.uint16).view(F16)[0]


def special_plane(rng, shape, scale=0.1, odd=True, subnormals=True) -> np.ndarray:
    """Gaussian halves with zeros of both signs, subnormals (subnormals=False: none, the
    smallest normals +-2^-14 instead: the kernels' short widening) and large values in some
    channels; odd=True adds an inf, a -inf and two NaNs with payloads (two channels clean)."""
    x = (scale * rng.standard_normal(shape)).astype(F16)
    flat = x.reshape(-1, shape[-1])
    c = shape[-1]
    flat[0, 0] = F16(-0.0)
    flat[:, 1 % c] = F16(-0.0) if c > 2 else flat[:, 1 % c]      # a channel of -0 only: sum +0
    for i, v in enumerate(SUBNORMALS):
        flat[(i + 1) % flat.shape[0], (2 + i) % c] = v
    flat[-1, (c - 1)] = F16(65504.0) if c > 3 else flat[-1, c - 1]
    if c > 4:                                                    # a channel of subnormals only
        flat[:, 3] = SUBNORMALS[np.arange(flat.shape[0]) % len(SUBNORMALS)]
    if odd and c > 8:
        flat[1 % flat.shape[0], 5] = F16(np.inf)
        flat[0, 6] = F16(-np.inf)
        flat[-1, 7] = _nan(0x15)
        flat[0, c - 2] = _nan(0x3, negative=True)
    if not subnormals:
        tiny = (flat != 0) & (np.abs(flat.astype(np.float32)) < 2.0 ** -14)
        flat[tiny] = np.where(flat[tiny] < 0, F16(-(2.0 ** -14)), F16(2.0 ** -14))
    return x


def bias_cases(h, w, c, seed=0, odd=True, scale=1.0, dynamic=False, helium_ref=True, subnormals=True) -> list:
    """tt_bias_update_f16_mve against f16.sgd(f16.bias_grad(gy)) and the portable kernel
    (helium_ref=False: the portable kernel as `ref`, the Helium one as `var`: the bench's rows)."""
    rng = np.random.default_rng(seed)
    gy = special_plane(rng, (h, w, c), odd=odd, subnormals=subnormals)
    b = (0.5 * rng.standard_normal(c)).astype(F16)
    b[0] = F16(6e-8)                                             # a subnormal bias
    lr = 0.01
    name = f"bias update {h}x{w}x{c}" + (" inf/nan" if odd else "") + (" dynamic" if dynamic else "") \
        + ("" if subnormals else " no subnormal")
    case = Case(name, out_bytes=2 * c, macs=h * w * c)
    g = f16.bias_grad(gy)
    if dynamic:                         # from the first non-finite gradient on, nothing moves
        bad = np.flatnonzero(~np.isfinite(g))
        stop = int(bad[0]) if bad.size else c
        new = b.copy()
        new[:stop] = f16.sgd(b[:stop], g[:stop], lr, 0.0, 0.0, scale)
        case.expected = _out_bytes(new)
        hp, ls, u = case._name("hp"), case._name("ls"), case._name("upd")
        case.decls.append('#include "tt_train_kernels.h"')
        case.decls.append(f"static tt_hparams {hp} = {{ .lr = {lr!r}f, .momentum = 0.0f, .weight_decay = 0.0f }};")
        case.decls.append(f"static tt_loss_scale {ls} = {{ .scale = {scale!r}f, .dynamic = 1, .overflow = 0, "
                          ".good_steps = 0, .interval = 1000 };")
        case.decls.append(f"static const tt_update {u} = {{ .hp = &{hp}, .mode = TT_UPDATE_FLOAT, .ls = &{ls} }};")
        upd = "&" + u
        case.pre = f"{ls}.overflow = 0; memcpy(tt_out, {_half(case, 'b', b)}, {2 * c});"
    else:
        case.expected = _out_bytes(f16.sgd(b, g, lr, 0.0, 0.0, scale))
        upd = _update(case, lr, scale=scale)
        case.pre = f"memcpy(tt_out, {_half(case, 'b', b)}, {2 * c});"
    args = f"{case.dims((h, w, c))}, (tt_f16 *)tt_out, {_half(case, 'gy', gy)}, {upd}"
    case.ref, case.var = f"tt_bias_update_f16_mve({args});", f"tt_bias_update_f16({args});"
    if not helium_ref:
        case.ref, case.var = case.var, case.ref
    return [case]


def mean_cases(h, w, c, seed=0, odd=True, acc=1, subnormals=True) -> list:
    """tt_global_avg_pool_f16_mve and its input gradient (stored, or added to old gradients
    that hold inf and NaN too) against f16.global_avg_pool(_grad) and the portable kernels."""
    rng = np.random.default_rng(seed)
    x = special_plane(rng, (h, w, c), scale=3.0, odd=odd, subnormals=subnormals)
    gy = special_plane(rng, (1, 1, c), odd=odd, subnormals=subnormals).reshape(c)
    old = special_plane(rng, (h, w, c), odd=odd, subnormals=subnormals)
    name = f"mean {h}x{w}x{c}" + (" inf/nan" if odd else "") + ("" if subnormals else " no subnormal")
    fwd = Case(f"{name} forward", out_bytes=2 * c, macs=h * w * c)
    fwd.expected = _out_bytes(f16.global_avg_pool(x))
    args = f"{_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, (tt_f16 *)tt_out"
    fwd.ref, fwd.var = f"tt_global_avg_pool_f16_mve({args});", f"tt_global_avg_pool_f16({args});"
    bwd = Case(f"{name} grad input (acc {acc})", out_bytes=2 * h * w * c, macs=h * w * c)
    bwd.expected = _out_bytes(f16.round_grad(f16.global_avg_pool_grad(gy, (h, w, c)), old if acc else None))
    bwd.pre = f"memcpy(tt_out, {_half(bwd, 'old', old)}, {2 * h * w * c});"
    bwd.decls.append('#include "tt_train_kernels.h"')
    args = f"{bwd.dims((h, w, c))}, {_half(bwd, 'gy', gy)}, {acc}, (tt_f16 *)tt_out"
    bwd.ref, bwd.var = (f"tt_global_avg_pool_grad_input_f16_mve({args});",
                        f"tt_global_avg_pool_grad_input_f16({args});")
    return [fwd, bwd]


def avg_pool_cases(h, w, c, k=3, stride=1, pad=1, seed=0, odd=True, acc=1, act="none", subnormals=True) -> list:
    """tt_avg_pool2d_f16_mve and its input gradient against f16.avg_pool2d(_grad) and the
    portable kernels (odd: infinities and NaNs in x, grad_y and the old gradients: the portable
    path; without: subnormals, zeros of both signs, 65504 through the Helium path)."""
    rng = np.random.default_rng(seed)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    x = special_plane(rng, (h, w, c), scale=3.0, odd=odd, subnormals=subnormals)
    gy = special_plane(rng, (oh, ow, c), odd=odd, subnormals=subnormals)
    old = special_plane(rng, (h, w, c), odd=odd, subnormals=subnormals)
    st, pd = (stride, stride), (pad,) * 4
    codes = {"none": 0, "relu": 1, "relu6": 2}
    name = f"avg pool {h}x{w}x{c} {k}x{k} s{stride} p{pad} {act}" + (" inf/nan" if odd else "") \
        + ("" if subnormals else " no subnormal")
    fwd = Case(f"{name} forward", out_bytes=2 * oh * ow * c, macs=oh * ow * c * k * k)
    fwd.expected = _out_bytes(f16.avg_pool2d(x, (k, k), st, pd, act, (oh, ow)))
    args = (f"{_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, {k}, {k}, {fwd.geom(st, pd)}, {codes[act]}, "
            f"(tt_f16 *)tt_out, {fwd.dims((oh, ow, c))}")
    fwd.ref, fwd.var = f"tt_avg_pool2d_f16_mve({args});", f"tt_avg_pool2d_f16({args});"
    bwd = Case(f"{name} grad input (acc {acc})", out_bytes=2 * h * w * c, macs=oh * ow * c * k * k)
    bwd.expected = _out_bytes(f16.round_grad(f16.avg_pool2d_grad(gy, (h, w), (k, k), st, pd), old if acc else None))
    shape = _shape(bwd, (h, w, c), (oh, ow, c), k, k, st, pd, (1, 1))
    bwd.pre = f"memcpy(tt_out, {_half(bwd, 'old', old)}, {2 * h * w * c});"
    args = f"{shape}, {_half(bwd, 'gy', gy)}, {acc}, (tt_f16 *)tt_out"
    bwd.ref, bwd.var = (f"tt_avg_pool2d_grad_input_f16_mve({args});", f"tt_avg_pool2d_grad_input_f16({args});")
    return [fwd, bwd]


def sum_cases() -> list:
    cases = []
    cases += avg_pool_cases(6, 7, 13, seed=21, odd=False)                   # overlapping, padded, tails
    cases += avg_pool_cases(6, 7, 13, seed=21, odd=False, acc=0, act="relu")
    cases += avg_pool_cases(8, 8, 8, k=2, stride=2, pad=0, seed=22, odd=False, act="relu6")   # full vectors
    cases += avg_pool_cases(7, 5, 21, k=3, stride=2, pad=1, seed=23, odd=False, acc=0)
    cases += avg_pool_cases(5, 6, 11, k=5, stride=1, pad=2, seed=24, odd=False)           # 25 taps, counts 9..25
    cases += avg_pool_cases(5, 5, 12, seed=25)                                # inf / NaN: the portable path
    cases += avg_pool_cases(4, 4, 3, k=9, stride=1, pad=4, seed=26, odd=False)   # 81 taps: portable
    # no subnormal anywhere: the short widening
    cases += avg_pool_cases(6, 7, 13, seed=27, odd=False, subnormals=False)
    cases += avg_pool_cases(8, 8, 8, k=2, stride=2, pad=0, seed=28, odd=False, acc=0, act="relu", subnormals=False)
    cases += mean_cases(6, 5, 21, seed=29, odd=False, subnormals=False)
    cases += bias_cases(5, 4, 13, seed=30, odd=False, subnormals=False)
    cases += bias_cases(8, 8, 32, seed=31, odd=False, subnormals=False, scale=4.0)
    cases += mean_cases(4, 5, 3, seed=11, odd=False)
    cases += mean_cases(4, 5, 3, seed=11, odd=False, acc=0)
    cases += mean_cases(5, 3, 13, seed=12)                           # tails, inf, NaN
    cases += mean_cases(5, 3, 13, seed=12, acc=0)
    cases += mean_cases(3, 4, 37, seed=13)                           # 3 blocks, a tail of 5
    cases += mean_cases(7, 7, 40, seed=14, odd=False, acc=0)
    cases += mean_cases(6, 5, 21, seed=15, odd=False)                # accumulated: the vector path, subnormals
    cases += bias_cases(4, 5, 3, seed=1, odd=False)                  # one vector, a tail of 3
    cases += bias_cases(5, 4, 13, seed=2)                            # 4 vectors, a tail of 1; inf, NaN
    cases += bias_cases(3, 3, 37, seed=3, scale=64.0)               # 3 blocks of 16, a tail of 5
    cases += bias_cases(6, 6, 24, seed=4, dynamic=True, scale=1024.0)   # the overflow stops the rest
    cases += bias_cases(8, 8, 32, seed=5, odd=False, scale=8.0)
    cases += bias_cases(1, 1, 10, seed=6, odd=False)                 # a dense layer's bias
    return cases


def bench_rows() -> list:
    """(label, f16 case with the portable kernel as ref and the Helium one as var, f32 case or
    None): bench/bench_fp16_ops.py's rows of the bias update, and of the pool and the mean
    without subnormals (the short widening; its other rows, from f16_cases.pool_cases, hold a
    few subnormals: the exact widening)."""
    from f16_cases import _float
    h, w, c = 16, 16, 32
    out = []
    for sub in (True, False):
        b16 = bias_cases(h, w, c, seed=31, odd=False, helium_ref=False, subnormals=sub)[0]
        b32 = None
        if sub:
            b32 = Case("bias update f32", out_bytes=4 * c, macs=h * w * c)
            rng = np.random.default_rng(31)
            upd = _update(b32, 0.01)
            b32.pre = f"memset(tt_out, 0, {4 * c});"
            b32.ref = (f"tt_bias_update_f32({b32.dims((h, w, c))}, (float *)tt_out, "
                       f"{_float(b32, 'gy', 0.1 * rng.standard_normal(h * w * c))}, {upd});")
        out.append((f"bias update {h}x{w}x{c}" + (" (subnormals in grad_y)" if sub else " (no subnormal)"), b16, b32))
    pool = avg_pool_cases(h, w, c, k=3, stride=1, pad=1, seed=32, odd=False, acc=0, subnormals=False)
    mean = mean_cases(h, w, c, seed=33, odd=False, subnormals=False)
    for case in pool + mean[:1]:
        case.ref, case.var = case.var, case.ref
    out.append(("avg pool 3x3 s1 forward (no subnormal)", pool[0], None))
    out.append(("avg pool 3x3 s1 grad input (no subnormal)", pool[1], None))
    out.append(("mean 16x16x32 forward (no subnormal)", mean[0], None))
    return out
