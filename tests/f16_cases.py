"""Kernel-harness cases of the half-precision kernels (tests/kernel_harness.py): one Case per
kernel call, its output checked against the numpy model (tinytrain/ops/f16.py) byte for byte
and its instructions counted. Used by tests/test_fp16_mve.py and bench/bench_fp16.py."""
from __future__ import annotations

import numpy as np

from tinytrain.ops import f16
from tinytrain.resources import firmware_dir

from kernel_harness import Case

F16 = np.float16


def kernels() -> list:
    """Every float16 kernel file, the float32 conv2d / fully connected ones (the baselines)
    and their Helium variants."""
    k = firmware_dir() / "kernels"
    files = sorted(k.glob("*/*_f16*.c"))
    for op in ("conv2d", "fully_connected"):
        files += sorted((k / op).glob(f"{op}_f32*.c")) + sorted((k / op).glob(f"{op}_backward_f32*.c"))
    return files


def _half(case: Case, what: str, a: np.ndarray, ram: bool = False) -> str:
    return f"(tt_f16 *){case.array(what, np.asarray(a, F16).view(np.uint16), ram=ram)}"


def _float(case: Case, what: str, a: np.ndarray) -> str:
    return f"(const float *){case.array(what, np.asarray(a, np.float32).view(np.uint32))}"


def _out_bytes(y: np.ndarray) -> np.ndarray:
    return np.frombuffer(np.ascontiguousarray(y).tobytes(), np.int8)


def _shape(case: Case, x_shape, y_shape, kh, kw, stride, pad, dil) -> str:
    name = case._name("shape")
    case.decls.append('#include "tt_train_kernels.h"')
    case.decls.append(f"static const tt_conv_shape {name} = {{{case.dims(x_shape)}, {case.dims(y_shape)}, {kh}, "
                      f"{kw}, {case.geom(stride, pad, dil)}}};")
    return "&" + name


def _update(case: Case, lr: float, n: int = 0, momentum: float = 0.0, wd: float = 0.0, scale: float = 1.0,
            master: np.ndarray | None = None) -> str:
    """&tt_update: SGD (momentum over n elements from 0, weight decay, a static loss scale,
    an fp32 master copy)."""
    hp, ls, u = case._name("hp"), case._name("ls"), case._name("upd")
    case.decls.append('#include "tt_train_kernels.h"')
    case.decls.append(f"static tt_hparams {hp} = {{ .lr = {lr!r}f, .momentum = {momentum!r}f, "
                      f".weight_decay = {wd!r}f }};")
    case.decls.append(f"static tt_loss_scale {ls} = {{ .scale = {scale!r}f, .dynamic = 0, .overflow = 0, "
                      ".good_steps = 0, .interval = 1000 };")
    extra = ""
    if momentum:
        extra += f", .momentum = {case.array('mom', np.zeros(n, np.uint32), ram=True)}".replace(
            ".momentum = ", ".momentum = (float *)")
    if master is not None:
        extra += f", .shadow = (float *){case.array('master', np.asarray(master, np.float32).view(np.uint32), ram=True)}"
    mode = "TT_UPDATE_MASTER" if master is not None else "TT_UPDATE_FLOAT"
    case.decls.append(f"static const tt_update {u} = {{ .hp = &{hp}, .mode = {mode}, .ls = &{ls}{extra} }};")
    return "&" + u


def _conv_update_case(name, calls, x, wt, gy, gw, k, geom, out_shape, macs, scratch, lr, rule):
    """A fused weight update of a conv-like layer (calls: the Helium kernel, checked against its
    model, and the portable one beside it, each as "name("): SGD with the rule's momentum,
    weight decay, loss scale, master copy."""
    upd = Case(name, out_bytes=wt.size * 2, macs=macs, scratch_bytes=scratch)
    h, w, cin = x.shape
    master = (wt.astype(np.float32) + np.float32(1e-4)).astype(np.float32) if rule.get("master") else None
    m = np.zeros(wt.shape, np.float32) if rule.get("momentum") else None
    upd.expected = _out_bytes(f16.sgd(wt, gw, lr, rule.get("momentum", 0.0), rule.get("wd", 0.0),
                                      rule.get("scale", 1.0), m, None if master is None else master.copy()))
    shape = _shape(upd, (h, w, cin), out_shape, k, k, *geom)
    ch = upd._name("ch")
    upd.decls.append(f"static const tt_channels {ch} = {{ .in_channels = {cin}, .k = {cin}, .index = NULL, "
                     f".x_channels = {cin} }};")
    upd.pre = f"memcpy(tt_out, {_half(upd, 'w0', wt)}, {wt.size * 2});"
    u = _update(upd, lr, wt.size, rule.get("momentum", 0.0), rule.get("wd", 0.0), rule.get("scale", 1.0), master)
    args = f"{shape}, &{ch}, (tt_f16 *)tt_out, {_half(upd, 'x', x)}, {_half(upd, 'gy', gy)}, {u}, (float *)tt_scratch"
    upd.ref, upd.var = f"{calls[0]}{args});", f"{calls[1]}{args});"
    return upd


def conv_geometry(h, w, cin, cout, k, stride, pad, dil):
    oh = (h + 2 * pad - (k - 1) * dil - 1) // stride + 1
    ow = (w + 2 * pad - (k - 1) * dil - 1) // stride + 1
    return oh, ow


def conv_cases(h, w, cin, cout, k=3, stride=1, pad=1, dil=1, seed=0, acc=0, lr=0.01, f32=False, rule=None):
    """(forward, grad input, update) Cases of one conv2d layer: the Helium f16 kernel as `ref`
    (checked against the numpy model), the portable f16 kernel as `var`; with f32 also the
    float32 scalar kernels (and their Helium variants, where they exist) as extra cases."""
    rng = np.random.default_rng(seed)
    oh, ow = conv_geometry(h, w, cin, cout, k, stride, pad, dil)
    x = rng.standard_normal((h, w, cin)).astype(F16)
    wt = (rng.standard_normal((cout, k, k, cin)) / np.sqrt(k * k * cin)).astype(F16)
    b = (0.1 * rng.standard_normal(cout)).astype(F16)
    gy = (0.1 * rng.standard_normal((oh, ow, cout))).astype(F16)
    gx_old = (0.1 * rng.standard_normal((h, w, cin))).astype(F16)
    st, pd, dl = (stride, stride), (pad, pad, pad, pad), (dil, dil)
    macs = oh * ow * cout * k * k * cin
    name = f"conv {h}x{w}x{cin}->{k}x{k}->{cout} s{stride} p{pad} d{dil}"
    cases = []

    fwd = Case(f"{name} forward", out_bytes=oh * ow * cout * 2, macs=macs,
               scratch_bytes=f16.conv2d_f16_mve_scratch_bytes(k, k, cin, cout))
    y = f16.conv2d_mve(x, wt, b, st, pd, dl, "relu", (oh, ow))
    fwd.expected = _out_bytes(y)
    args = (f"{_half(fwd, 'x', x)}, {fwd.dims((h, w, cin))}, {_half(fwd, 'w', wt)}, {_half(fwd, 'b', b)}, "
            f"{k}, {k}, {fwd.geom(st, pd, dl)}, 1, (tt_f16 *)tt_out, {fwd.dims((oh, ow, cout))}")
    fwd.ref, fwd.var = f"tt_conv2d_f16_mve({args}, tt_scratch);", f"tt_conv2d_f16({args});"
    cases.append(fwd)

    gin = Case(f"{name} grad input", out_bytes=h * w * cin * 2, macs=macs)
    g = f16.round_grad(f16.conv2d_grad_input_mve(gy, wt, (h, w), st, pd, dl), gx_old if acc else None)
    gin.expected = _out_bytes(g)
    shape = _shape(gin, (h, w, cin), (oh, ow, cout), k, k, st, pd, dl)
    old = _half(gin, "gxold", gx_old)
    gin.pre = f"memcpy(tt_out, {old}, {h * w * cin * 2});"
    args = f"{shape}, {_half(gin, 'gy', gy)}, {_half(gin, 'w', wt)}, {acc}, (tt_f16 *)tt_out"
    gin.ref, gin.var = f"tt_conv2d_grad_input_f16_mve({args});", f"tt_conv2d_grad_input_f16({args});"
    cases.append(gin)

    gw = f16.conv2d_grad_weight_mve(x, gy, k, k, st, pd, dl, cin)
    upd = _conv_update_case(f"{name} grad weight + update", ("tt_conv2d_update_weight_f16_mve(",
                            "tt_conv2d_update_weight_f16("), x, wt, gy, gw, k,
                            (st, pd, dl), (oh, ow, cout), macs, 4 * k * k * cin, lr, rule or {})
    cases.append(upd)
    if f32:
        cases += conv_cases_f32(x, wt, b, gy, name, k, st, pd, dl, (oh, ow), lr)
    return cases


def exact_f32_cases(h, w, cin, cout, k=3, stride=1, pad=1, dil=1, seed=0):
    """The float32 scalar kernels against their Helium variants on small integers (and a
    power-of-two learning rate), where every product and sum is exact, so fused and unfused
    arithmetic agree: the outputs must be identical byte for byte."""
    rng = np.random.default_rng(seed)
    oh, ow = conv_geometry(h, w, cin, cout, k, stride, pad, dil)
    ints = lambda *s: rng.integers(-3, 4, s).astype(np.float32)
    return conv_cases_f32(ints(h, w, cin), ints(cout, k, k, cin), ints(cout), ints(oh, ow, cout),
                          f"exact conv {h}x{w}x{cin}->{k}x{k}->{cout} s{stride} p{pad} d{dil}", k, (stride, stride),
                          (pad,) * 4, (dil, dil), (oh, ow), 2.0 ** -10)


def conv_cases_f32(x, wt, b, gy, name, k, st, pd, dl, out_hw, lr):
    """The float32 scalar kernels (ref) and their Helium variants (var, where they exist) on
    the same values: instruction counts only."""
    h, w, cin = x.shape
    oh, ow = out_hw
    cout = wt.shape[0]
    xf, wf, bf, gyf = (np.asarray(a, np.float32) for a in (x, wt, b, gy))
    macs = oh * ow * cout * k * k * cin
    from tinytrain.cgen.kernels import kernel_index
    have = kernel_index().has
    out = []
    c = Case(f"{name} forward f32", out_bytes=oh * ow * cout * 4, macs=macs,
             scratch_bytes=4 * k * k * cin * min(-(-cout // 4) * 4, 16))
    args = (f"{_float(c, 'x', xf)}, {c.dims((h, w, cin))}, {_float(c, 'w', wf)}, {_float(c, 'b', bf)}, {k}, {k}, "
            f"{c.geom(st, pd, dl)}, 1, (float *)tt_out, {c.dims((oh, ow, cout))}")
    c.ref = f"tt_conv2d_f32({args});"
    c.var = f"tt_conv2d_f32_mve({args}, tt_scratch);" if have("tt_conv2d_f32_mve") else None
    out.append(c)
    c = Case(f"{name} grad input f32", out_bytes=h * w * cin * 4, macs=macs)
    shape = _shape(c, (h, w, cin), (oh, ow, cout), k, k, st, pd, dl)
    args = f"{shape}, {_float(c, 'gy', gyf)}, {_float(c, 'w', wf)}, 0, (float *)tt_out"
    c.ref = f"tt_conv2d_grad_input_f32({args});"
    c.var = f"tt_conv2d_grad_input_f32_mve({args});" if have("tt_conv2d_grad_input_f32_mve") else None
    out.append(c)
    c = Case(f"{name} grad weight + update f32", out_bytes=wt.size * 4, macs=macs, scratch_bytes=4 * k * k * cin)
    shape = _shape(c, (h, w, cin), (oh, ow, cout), k, k, st, pd, dl)
    ch = c._name("ch")
    c.decls.append(f"static const tt_channels {ch} = {{ .in_channels = {cin}, .k = {cin}, .index = NULL, "
                   f".x_channels = {cin} }};")
    w0 = _float(c, "w0", wf)
    c.pre = f"memcpy(tt_out, {w0}, {wt.size * 4});"
    args = (f"{shape}, &{ch}, (float *)tt_out, {_float(c, 'x', xf)}, {_float(c, 'gy', gyf)}, {_update(c, lr)}, "
            "(float *)tt_scratch")
    c.ref = f"tt_conv2d_update_weight_f32({args});"
    c.var = f"tt_conv2d_update_weight_f32_mve({args});" if have("tt_conv2d_update_weight_f32_mve") else None
    out.append(c)
    return out


def fc_cases(n_in, n_out, seed=0, acc=0, rule=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n_in).astype(F16)
    wt = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(F16)
    b = (0.1 * rng.standard_normal(n_out)).astype(F16)
    gy = (0.1 * rng.standard_normal(n_out)).astype(F16)
    gx_old = (0.1 * rng.standard_normal(n_in)).astype(F16)
    name = f"fc {n_in}->{n_out}"
    fwd = Case(f"{name} forward", out_bytes=n_out * 2, macs=n_in * n_out)
    fwd.expected = _out_bytes(f16.fully_connected_mve(x, wt, b, "none"))
    args = f"{_half(fwd, 'x', x)}, {n_in}, {_half(fwd, 'w', wt)}, {_half(fwd, 'b', b)}, {n_out}, 0, (tt_f16 *)tt_out"
    fwd.ref, fwd.var = f"tt_fully_connected_f16_mve({args});", f"tt_fully_connected_f16({args});"
    gin = Case(f"{name} grad input", out_bytes=n_in * 2, macs=n_in * n_out)
    gin.expected = _out_bytes(f16.round_grad(f16.fully_connected_grad_input_mve(gy, wt), gx_old if acc else None))
    old = _half(gin, "gxold", gx_old)
    gin.pre = f"memcpy(tt_out, {old}, {n_in * 2});"
    gin.decls.append('#include "tt_train_kernels.h"')
    args = f"{n_in}, {n_out}, {_half(gin, 'gy', gy)}, {_half(gin, 'w', wt)}, {acc}, (tt_f16 *)tt_out"
    gin.ref = f"tt_fully_connected_grad_input_f16_mve({args});"
    gin.var = f"tt_fully_connected_grad_input_f16({args});"
    return [fwd, gin, _fc_update(name, x, wt, gy, rule or {})]


def _fc_update(name, x, wt, gy, rule, lr=0.01):
    """The fused update (Helium: the portable kernel's bits, so ref and var must agree)."""
    n_out, n_in = wt.shape
    upd = Case(f"{name} update", out_bytes=wt.size * 2, macs=wt.size)
    gw = f16.fully_connected_grad_weight(x, gy, n_in)
    m = np.zeros(wt.shape, np.float32) if rule.get("momentum") else None
    upd.expected = _out_bytes(f16.sgd(wt, gw, lr, rule.get("momentum", 0.0), rule.get("wd", 0.0),
                                      rule.get("scale", 1.0), m))
    ch = upd._name("ch")
    upd.decls.append('#include "tt_train_kernels.h"')
    upd.decls.append(f"static const tt_channels {ch} = {{ .in_channels = {n_in}, .k = {n_in}, .index = NULL, "
                     f".x_channels = {n_in} }};")
    w0 = _half(upd, "w0", wt)
    upd.pre = f"memcpy(tt_out, {w0}, {wt.size * 2});"
    u = _update(upd, lr, wt.size, rule.get("momentum", 0.0), rule.get("wd", 0.0), rule.get("scale", 1.0))
    args = f"{n_out}, &{ch}, (tt_f16 *)tt_out, {_half(upd, 'x', x)}, {_half(upd, 'gy', gy)}, {u}"
    upd.ref = f"tt_fully_connected_update_weight_f16_mve({args});"
    upd.var = f"tt_fully_connected_update_weight_f16({args});"
    return upd


def depthwise_cases(h, w, c, k=3, stride=1, pad=1, dil=1, seed=0, acc=0, act="relu", rule=None):
    """(forward, grad input) Cases of a depthwise layer: the Helium kernel against its model."""
    rng = np.random.default_rng(seed)
    oh, ow = conv_geometry(h, w, c, c, k, stride, pad, dil)
    x = rng.standard_normal((h, w, c)).astype(F16)
    wt = (0.5 * rng.standard_normal((k, k, c))).astype(F16)
    b = (0.1 * rng.standard_normal(c)).astype(F16)
    gy = (0.1 * rng.standard_normal((oh, ow, c))).astype(F16)
    gx_old = (0.1 * rng.standard_normal((h, w, c))).astype(F16)
    st, pd, dl = (stride, stride), (pad,) * 4, (dil, dil)
    name = f"dw {h}x{w}x{c} {k}x{k} s{stride} p{pad} d{dil} {act}"
    codes = {"none": 0, "relu": 1, "relu6": 2}
    fwd = Case(f"{name} forward", out_bytes=oh * ow * c * 2, macs=oh * ow * c * k * k)
    fwd.expected = _out_bytes(f16.depthwise_mve(x, wt, b, st, pd, dl, act, (oh, ow)))
    args = (f"{_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, {_half(fwd, 'w', wt)}, {_half(fwd, 'b', b)}, {k}, {k}, "
            f"{fwd.geom(st, pd, dl)}, {codes[act]}, (tt_f16 *)tt_out, {fwd.dims((oh, ow, c))}")
    fwd.ref, fwd.var = f"tt_depthwise_conv2d_f16_mve({args});", f"tt_depthwise_conv2d_f16({args});"
    gin = Case(f"{name} grad input", out_bytes=h * w * c * 2, macs=oh * ow * c * k * k)
    gin.expected = _out_bytes(f16.round_grad(f16.depthwise_grad_input_mve(gy, wt, (h, w), st, pd, dl),
                                             gx_old if acc else None))
    shape = _shape(gin, (h, w, c), (oh, ow, c), k, k, st, pd, dl)
    old = _half(gin, "gxold", gx_old)
    gin.pre = f"memcpy(tt_out, {old}, {h * w * c * 2});"
    args = f"{shape}, {_half(gin, 'gy', gy)}, {_half(gin, 'w', wt)}, {acc}, (tt_f16 *)tt_out"
    gin.ref = f"tt_depthwise_conv2d_grad_input_f16_mve({args});"
    gin.var = f"tt_depthwise_conv2d_grad_input_f16({args});"
    gw = f16.depthwise_grad_weight_mve(x, gy, k, k, st, pd, dl, c)
    upd = _conv_update_case(f"{name} grad weight + update", ("tt_depthwise_conv2d_update_weight_f16_mve(",
                            "tt_depthwise_conv2d_update_weight_f16("), x, wt, gy, gw, k, (st, pd, dl), (oh, ow, c), oh * ow * c * k * k, 4 * k * k, 0.01, rule or {})
    return [fwd, gin, upd]


def fc_update_edges(seed=0):
    """The fused fully connected update on operands the vector rule must leave to the scalar
    one: zeros of both signs, subnormal inputs, weights whose update ends subnormal, near
    65504 or overflows; and a zero / subnormal output gradient."""
    rng = np.random.default_rng(seed)
    n_in, n_out = 40, 4
    x = rng.standard_normal(n_in).astype(F16)
    x[[0, 1, 9, 17]] = np.array([0.0, -0.0, 3e-6, -5e-7], F16)         # zeros, subnormals
    wt = (rng.standard_normal((n_out, n_in)) * 0.5).astype(F16)
    wt[0, 24:32] = np.array([6e-5, -6.2e-5, 1e-7, 0.0, -0.0, 6.1e-5, 65500, -65400], F16)
    gy = np.array([0.5, 0.0, 2e-7, -3.0], F16)                           # zero and subnormal gy
    return _fc_update("fc edges", x, wt, gy, {}, lr=0.01)


def mask_cases(n=37, seed=0):
    """The relu / relu6 masks and their use, Helium (ref) against the portable kernels (var):
    identical bytes, on zeros of both signs, subnormals, 6, inf, NaN and a tail."""
    rng = np.random.default_rng(seed)
    y = (4 * rng.standard_normal(n)).astype(F16)
    y[:8] = np.array([0.0, -0.0, 3e-6, -3e-6, 6.0, np.inf, -np.inf, np.nan], F16)
    cases = []
    for act, mve, portable in (("relu", "tt_mask_relu_f16_mve(", "tt_mask_relu_f16("),
                               ("relu6", "tt_mask_relu6_f16_mve(", "tt_mask_relu6_f16(")):
        c = Case(f"mask {act} n{n}", out_bytes=(n + 7) // 8)
        c.decls.append('#include "tt_train_kernels.h"')
        args = f"{_half(c, 'y', y)}, {n}, (uint8_t *)tt_out"
        c.ref, c.var = f"{mve}{args});", f"{portable}{args});"
        cases.append(c)
    g = rng.standard_normal(n).astype(F16)
    m = rng.integers(0, 256, (n + 7) // 8).astype(np.uint8)
    m[0] = 0xFF
    m[-1] &= (1 << (n % 8 or 8)) - 1
    c = Case(f"mask apply n{n}", out_bytes=2 * n)
    c.decls.append('#include "tt_train_kernels.h"')
    mask = c.array("mask", m.view(np.int8))
    c.pre = f"memcpy(tt_out, {_half(c, 'g', g)}, {2 * n});"
    args = f"(tt_f16 *)tt_out, {n}, (const uint8_t *){mask}"
    c.ref, c.var = f"tt_mask_apply_f16_mve({args});", f"tt_mask_apply_f16({args});"
    cases.append(c)
    return cases


def maxpool_cases(h=7, w=6, c=13, k=2, stride=2, seed=0, act=1):
    """Max pooling forward and backward, Helium (ref) against the portable kernels (var):
    identical bytes, with ties, zeros of both signs, a NaN, uncovered edge rows and a tail."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (h, w, c)).astype(F16)          # many ties
    x[0, 0, :4] = np.array([-0.0, np.nan, 3e-6, -np.inf], F16)
    x[0, 1, :4] = np.array([0.0, 1.0, 3e-6, -np.inf], F16)
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    gy = rng.standard_normal((oh, ow, c)).astype(F16)
    st, pd, dl = (stride, stride), (0, 0, 0, 0), (1, 1)
    fwd = Case(f"max pool {h}x{w}x{c} k{k} s{stride} act{act}", out_bytes=oh * ow * c * 2)
    args = (f"{_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, {k}, {k}, {fwd.geom(st, pd, dl)}, {act}, "
            f"(tt_f16 *)tt_out, {fwd.dims((oh, ow, c))}")
    fwd.ref, fwd.var = f"tt_max_pool2d_f16_mve({args});", f"tt_max_pool2d_f16({args});"
    bwd = Case(f"max pool {h}x{w}x{c} k{k} s{stride} grad input", out_bytes=h * w * c * 2)
    shape = _shape(bwd, (h, w, c), (oh, ow, c), k, k, st, pd, dl)
    bwd.pre = f"memset(tt_out, 0x5A, {h * w * c * 2});"
    args = f"{shape}, {_half(bwd, 'x', x)}, {_half(bwd, 'gy', gy)}, 0, (tt_f16 *)tt_out"
    bwd.ref, bwd.var = f"tt_max_pool2d_grad_input_f16_mve({args});", f"tt_max_pool2d_grad_input_f16({args});"
    return [fwd, bwd]


# --- the elementwise, pooling, mean and softmax kernels (portable; add's Helium variant) ------------

def _bcast_decl(case: Case, f: dict) -> str:
    name = case._name("bc")
    case.decls.append(f"static const tt_bcast {name} = {{ .h = {f['h']}, .w = {f['w']}, .c = {f['c']}, "
                      f".a_sh = {f['a_sh']}, .a_sw = {f['a_sw']}, .a_sc = {f['a_sc']}, "
                      f".b_sh = {f['b_sh']}, .b_sw = {f['b_sw']}, .b_sc = {f['b_sc']} }};")
    return "&" + name


def add_cases(shape, other_shape=None, seed=0, act="relu", sub=False, acc=0):
    """Forward (equal shapes: the Helium add as `var`; broadcast) and the gradients of add /
    sub: the portable kernel as `ref`, checked against tinytrain/ops/f16.py."""
    from tinytrain.ops.elementwise import bcast_fields
    rng = np.random.default_rng(seed)
    other_shape = tuple(other_shape or shape)
    a = (4 * rng.standard_normal(shape)).astype(F16)
    b = (4 * rng.standard_normal(other_shape)).astype(F16)
    codes = {"none": 0, "relu": 1, "relu6": 2}
    kind = "sub" if sub else "add"
    fn = (lambda x, y: (x.astype(np.float64) - y).astype(np.float32)) if sub else \
        (lambda x, y: (x.astype(np.float64) + y).astype(np.float32))
    n = int(np.prod(shape))
    name = f"{kind} {shape} {other_shape} {act}"
    fwd = Case(f"{name} forward", out_bytes=2 * n, macs=n)
    fwd.expected = _out_bytes(f16.binary(a, np.broadcast_to(b, shape), fn, act))
    if other_shape == tuple(shape):
        args = f"{_half(fwd, 'a', a)}, {_half(fwd, 'b', b)}, {n}, {codes[act]}, (tt_f16 *)tt_out"
        fwd.ref = f"tt_{kind}_f16({args});"
        fwd.var = f"tt_add_f16_mve({args});" if not sub else None
    else:
        f = bcast_fields(shape, other_shape, shape)
        fwd.ref = (f"tt_{kind}_bcast_f16({_half(fwd, 'a', a)}, {_half(fwd, 'b', b)}, {_bcast_decl(fwd, f)}, "
                   f"{codes[act]}, (tt_f16 *)tt_out);")
    cases = [fwd]
    gy = (0.1 * rng.standard_normal(shape)).astype(F16)
    old_b = (0.1 * rng.standard_normal(other_shape)).astype(F16)
    if other_shape == tuple(shape) and not sub:        # an accumulating pass-through
        g = Case(f"{name} grad accumulate", out_bytes=2 * n, macs=n)
        g.expected = _out_bytes(f16.round_grad(f16.f32(gy), old_b))
        g.pre = f"memcpy(tt_out, {_half(g, 'old', old_b)}, {2 * n});"
        g.decls.append('#include "tt_train_kernels.h"')
        src = _half(g, 'gy', gy)
        g.ref, g.var = f"tt_add_grad_f16((tt_f16 *)tt_out, {src}, {n});", f"tt_add_grad_f16_mve((tt_f16 *)tt_out, {src}, {n});"
        cases.append(g)
    f = bcast_fields(other_shape, shape, shape)         # the gradient of the second operand
    nb = int(np.prod(other_shape))
    sign = -1.0 if sub else 1.0
    g = Case(f"{name} grad of b (acc {acc})", out_bytes=2 * nb, macs=n)
    g.expected = _out_bytes(f16.round_grad(f16.add_grad_bcast(gy, f, sign, other_shape), old_b if acc else None))
    g.pre = f"memcpy(tt_out, {_half(g, 'old', old_b)}, {2 * nb});"
    g.decls.append('#include "tt_train_kernels.h"')
    g.ref = f"tt_add_grad_bcast_f16({_half(g, 'gy', gy)}, {_bcast_decl(g, f)}, {sign!r}f, {acc}, (tt_f16 *)tt_out);"
    cases.append(g)
    return cases


def pool_cases(h, w, c, k=3, stride=1, pad=1, seed=0, acc=0, act="none"):
    """Average pooling (forward, input gradient) and the global mean (forward, input gradient);
    their Helium variants as `var` (the same bits)."""
    rng = np.random.default_rng(seed)
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    x = (3 * rng.standard_normal((h, w, c))).astype(F16)
    gy = (0.1 * rng.standard_normal((oh, ow, c))).astype(F16)
    gx_old = (0.1 * rng.standard_normal((h, w, c))).astype(F16)
    st, pd = (stride, stride), (pad,) * 4
    codes = {"none": 0, "relu": 1, "relu6": 2}
    name = f"avg pool {h}x{w}x{c} {k}x{k} s{stride} p{pad}"
    fwd = Case(f"{name} forward", out_bytes=2 * oh * ow * c, macs=oh * ow * c * k * k)
    fwd.expected = _out_bytes(f16.avg_pool2d(x, (k, k), st, pd, act, (oh, ow)))
    fwd.ref = (f"tt_avg_pool2d_f16({_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, {k}, {k}, {fwd.geom(st, pd)}, "
               f"{codes[act]}, (tt_f16 *)tt_out, {fwd.dims((oh, ow, c))});")
    fwd.var = fwd.ref.replace("tt_avg_pool2d_f16(", "tt_avg_pool2d_f16_mve(")                 # the same bits
    gin = Case(f"{name} grad input (acc {acc})", out_bytes=2 * h * w * c, macs=oh * ow * c * k * k)
    gin.expected = _out_bytes(f16.round_grad(f16.avg_pool2d_grad(gy, (h, w), (k, k), st, pd), gx_old if acc else None))
    shape = _shape(gin, (h, w, c), (oh, ow, c), k, k, st, pd, (1, 1))
    gin.pre = f"memcpy(tt_out, {_half(gin, 'old', gx_old)}, {2 * h * w * c});"
    gin.ref = f"tt_avg_pool2d_grad_input_f16({shape}, {_half(gin, 'gy', gy)}, {acc}, (tt_f16 *)tt_out);"
    gin.var = gin.ref.replace("tt_avg_pool2d_grad_input_f16(", "tt_avg_pool2d_grad_input_f16_mve(")
    gap = Case(f"mean {h}x{w}x{c} forward", out_bytes=2 * c, macs=h * w * c)
    gap.expected = _out_bytes(f16.global_avg_pool(x))
    gap.ref = f"tt_global_avg_pool_f16({_half(gap, 'x', x)}, {gap.dims((h, w, c))}, (tt_f16 *)tt_out);"
    gap.var = gap.ref.replace("tt_global_avg_pool_f16(", "tt_global_avg_pool_f16_mve(")     # the same bits
    ggap = Case(f"mean {h}x{w}x{c} grad input (acc {acc})", out_bytes=2 * h * w * c, macs=h * w * c)
    gyc = gy[0, 0]
    ggap.expected = _out_bytes(f16.round_grad(f16.global_avg_pool_grad(gyc, (h, w, c)), gx_old if acc else None))
    ggap.pre = f"memcpy(tt_out, {_half(ggap, 'old', gx_old)}, {2 * h * w * c});"
    ggap.decls.append('#include "tt_train_kernels.h"')
    ggap.ref = (f"tt_global_avg_pool_grad_input_f16({ggap.dims((h, w, c))}, {_half(ggap, 'gy', gyc)}, {acc}, "
                "(tt_f16 *)tt_out);")
    ggap.var = ggap.ref.replace("tt_global_avg_pool_grad_input_f16(", "tt_global_avg_pool_grad_input_f16_mve(")
    return [fwd, gin, gap, ggap]


def softmax_cases(rows, depth, seed=0, acc=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((rows, depth))).astype(F16)
    gy = (0.1 * rng.standard_normal((rows, depth))).astype(F16)
    old = (0.1 * rng.standard_normal((rows, depth))).astype(F16)
    n = rows * depth
    fwd = Case(f"softmax {rows}x{depth} forward", out_bytes=2 * n, macs=n)
    y = f16.softmax(x)
    fwd.expected = _out_bytes(y)
    fwd.ref = f"tt_softmax_f16({_half(fwd, 'x', x)}, {rows}, {depth}, (tt_f16 *)tt_out);"
    g = Case(f"softmax {rows}x{depth} grad input (acc {acc})", out_bytes=2 * n, macs=n)
    g.expected = _out_bytes(f16.round_grad(f16.softmax_grad(y, gy), old if acc else None))
    g.pre = f"memcpy(tt_out, {_half(g, 'old', old)}, {2 * n});"
    g.decls.append('#include "tt_train_kernels.h"')
    g.ref = (f"tt_softmax_grad_input_f16({rows}, {depth}, {_half(g, 'y', y)}, {_half(g, 'gy', gy)}, {acc}, "
             "(tt_f16 *)tt_out);")
    return [fwd, g]


def copy_cases(seed=0):
    """Standalone relu / relu6 and zero padding (forward, input gradient)."""
    from tinytrain.ops.window import pad4
    rng = np.random.default_rng(seed)
    x = (4 * rng.standard_normal((1, 5, 4, 6))).astype(F16)
    cases = []
    for act, code in (("relu", 1), ("relu6", 2)):
        c = Case(f"{act} 5x4x6", out_bytes=2 * x.size, macs=x.size)
        c.expected = _out_bytes(f16.activate(f16.f32(x), act))
        c.ref = f"tt_relu_f16({_half(c, 'x', x)}, {x.size}, {code}, (tt_f16 *)tt_out);"
        cases.append(c)
    pad = (1, 2, 0, 1)
    y = pad4(x, pad)
    c = Case("pad 5x4x6 (1, 2, 0, 1)", out_bytes=2 * y.size, macs=y.size)
    c.expected = _out_bytes(y)
    c.ref = (f"tt_pad_f16({_half(c, 'x', x)}, {c.dims(x.shape)}, 1, 0, (tt_f16 *)tt_out, {c.dims(y.shape)});")
    cases.append(c)
    gy = (0.1 * rng.standard_normal(y.shape)).astype(F16)
    old = (0.1 * rng.standard_normal(x.shape)).astype(F16)
    for acc in (0, 1):
        c = Case(f"pad 5x4x6 grad input (acc {acc})", out_bytes=2 * x.size, macs=x.size)
        c.expected = _out_bytes(f16.round_grad(f16.f32(gy[:, 1:6, 0:4]), old if acc else None))
        c.pre = f"memcpy(tt_out, {_half(c, 'old', old)}, {2 * x.size});"
        c.decls.append('#include "tt_train_kernels.h"')
        c.ref = (f"tt_pad_grad_input_f16({c.dims(x.shape)}, {c.dims(y.shape)}, 1, 0, {_half(c, 'gy', gy)}, {acc}, "
                 "(tt_f16 *)tt_out);")
        cases.append(c)
    return cases


def op_cases() -> list:
    """Every case of the kernels above (tests/test_fp16_ops.py runs them on both boards)."""
    cases = []
    cases += add_cases((1, 5, 6, 11), act="relu")                          # a tail of 3 lanes
    cases += add_cases((1, 4, 4, 16), act="relu6", seed=1)
    cases += add_cases((1, 5, 6, 7), (7,), seed=2, act="none", acc=1)     # per-channel constant
    cases += add_cases((1, 4, 5, 6), (1, 1, 1, 6), seed=3, act="relu")   # squeeze-excite-like
    cases += add_cases((1, 3, 4, 5), (1, 3, 1, 1), seed=4, act="none", acc=1)
    cases += add_cases((1, 4, 4, 6), (), seed=5, act="none")              # a scalar
    cases += add_cases((1, 4, 3, 6), seed=6, sub=True, act="none", acc=1)
    cases += add_cases((1, 4, 3, 6), (6,), seed=7, sub=True, act="relu")
    cases += pool_cases(6, 7, 5, seed=8)                                  # overlapping, padded
    cases += pool_cases(8, 8, 12, k=2, stride=2, pad=0, seed=9, acc=1, act="relu6")
    cases += pool_cases(7, 5, 3, k=3, stride=2, pad=1, seed=10, acc=1)
    cases += pool_cases(4, 5, 40, k=3, stride=1, pad=1, seed=14, acc=1)               # 2 channel chunks
    cases += softmax_cases(1, 10, seed=11)
    cases += softmax_cases(12, 7, seed=12, acc=1)
    cases += copy_cases(seed=13)
    return cases
