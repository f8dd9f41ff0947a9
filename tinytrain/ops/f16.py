"""numpy references of the float16 kernels, bit for bit.

The portable `_f16` kernels (firmware/kernels/<op>/<op>_f16.c, firmware/include/tt_f16.h)
hold tensors in half precision and compute in float32: each half operand is widened
exactly, every product and sum is rounded to float32 in the kernel's order (all C is
compiled with -ffp-contract=off), and each result is rounded to half once. The functions
below loop over the reduction index in the kernel's order, vectorized over the outputs, so
numpy rounds exactly where the C does.

Gradient functions return the float32 sums before their rounding to half: the C kernels
round `sum` (or, when accumulating into a gradient another op already wrote, `old + sum`)
once, which the training simulation does (`round_grad`); weight and bias gradients are
never stored in half (the fused update consumes the float32 sums).

The Helium `_f16_mve` variants compute in half with fused multiply-adds instead (see
`fma16` and the `mve` functions below).
"""
from __future__ import annotations

import functools

import numpy as np

F16, F32 = np.float16, np.float32


def _ieee(fn):
    """inf - inf, 0 * inf, overflow: NaN / inf as the C computes them, without numpy's warnings."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            return fn(*args, **kwargs)
    return wrapper


def f32(a) -> np.ndarray:
    """Half operands widened to float32 (exact)."""
    return np.asarray(a, F16).astype(F32)


@_ieee
def round_grad(acc: np.ndarray, old: np.ndarray | None = None) -> np.ndarray:
    """A gradient kernel's store: half(sum), or half(old + sum) when accumulating."""
    acc = np.asarray(acc, F32)
    if old is not None:
        acc = (f32(old) + acc).astype(F32)
    return acc.astype(F16)


@_ieee
def activate(acc: np.ndarray, act: str) -> np.ndarray:
    """tt_act_f16 then the rounding to half (relu / relu6 commute with the rounding)."""
    acc = _act(np.asarray(acc), act)
    return acc.astype(F16)


def _act(v: np.ndarray, act: str) -> np.ndarray:
    """`if (v < 0) v = 0; if (relu6 && v > 6) v = 6;` exactly (a -0 stays -0, a NaN stays)."""
    if act in ("relu", "relu6"):
        v = np.where(v < 0, v.dtype.type(0), v)
    if act == "relu6":
        v = np.where(v > 6, v.dtype.type(6), v)
    return v


@_ieee
def fma16(a, b, c) -> np.ndarray:
    """Fused multiply-add of halves, one rounding (vfmaq_f16): a*b is exact in float64 and,
    for every finite half result, a*b + c rounds to float64 without changing the half it
    rounds to (the exponent span a finite half result allows fits 53 bits)."""
    return (np.asarray(a, F16).astype(np.float64) * np.asarray(b, F16).astype(np.float64)
            + np.asarray(c, F16).astype(np.float64)).astype(F16)


def _axis_taps(n_out: int, n_in: int, k: int, stride: int, pad: int, dil: int):
    """For each tap t: (input index of every output position, valid mask)."""
    o = np.arange(n_out)
    for t in range(k):
        i = o * stride - pad + t * dil
        yield t, np.clip(i, 0, n_in - 1), (i >= 0) & (i < n_in)


def _axis_sources(n_in: int, n_out: int, k: int, stride: int, pad: int, dil: int):
    """For each tap t: (output index feeding every input position, valid mask): the gather
    form of a transposed window (grad input)."""
    i = np.arange(n_in)
    for t in range(k):
        num = i + pad - t * dil
        o = num // stride
        ok = (num >= 0) & (num % stride == 0) & (o < n_out)
        yield t, np.clip(o, 0, n_out - 1), ok


# --- conv2d -------------------------------------------------------------------------------------

@_ieee
def conv2d(x, w, bias, stride, pad, dil, act, out_hw) -> np.ndarray:
    """tt_conv2d_f16: x (H, W, C), w OHWI; acc = bias, then + x*w over ky, kx, i (taps
    outside the input skipped), relu, one rounding."""
    x, w = f32(x), f32(w)
    oh, ow = out_hw
    cout, kh, kw, cin = w.shape
    acc = np.zeros((oh, ow, cout), F32) + (f32(bias) if bias is not None else F32(0))
    for ky, iy, vy in _axis_taps(oh, x.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ix, vx in _axis_taps(ow, x.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            xs = x[iy][:, ix]                                   # (OH, OW, Cin)
            for i in range(cin):
                acc = np.where(valid, acc + xs[..., i:i + 1] * w[:, ky, kx, i], acc)
    return activate(acc, act)


@_ieee
def conv2d_grad_input(gy, w, in_hw, stride, pad, dil) -> np.ndarray:
    """tt_conv2d_grad_input_f16 (gather form): gx[ih, iw, i] = sum over ky, kx, o (in that
    order) of gy[oh, ow, o] * w[o, ky, kx, i] where (oh, ow) reaches (ih, iw) by that tap."""
    gy, w = f32(gy), f32(w)
    cout, kh, kw, cin = w.shape
    acc = np.zeros(tuple(in_hw) + (cin,), F32)
    for ky, oy, vy in _axis_sources(in_hw[0], gy.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ox, vx in _axis_sources(in_hw[1], gy.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            g = gy[oy][:, ox]                                   # (H, W, Cout)
            for o in range(cout):
                acc = np.where(valid, acc + g[..., o:o + 1] * w[o, ky, kx, :], acc)
    return acc


@_ieee
def conv2d_grad_weight(x, gy, kh, kw, stride, pad, dil, k) -> np.ndarray:
    """The float32 weight gradient (Cout, kh, kw, k) the fused update of tt_conv2d_update_
    weight_f16 computes per output channel: a sum over the output pixels in row-major order."""
    x, gy = f32(x)[..., :k], f32(gy)
    oh_n, ow_n, cout = gy.shape
    acc = np.zeros((cout, kh, kw, k), F32)
    ih = np.arange(kh) * dil[0]
    iw = np.arange(kw) * dil[1]
    for oh in range(oh_n):
        ys = oh * stride[0] - pad[0] + ih
        vy = (ys >= 0) & (ys < x.shape[0])
        for ow in range(ow_n):
            xs = ow * stride[1] - pad[2] + iw
            vx = (xs >= 0) & (xs < x.shape[1])
            patch = x[np.clip(ys, 0, x.shape[0] - 1)][:, np.clip(xs, 0, x.shape[1] - 1)]   # (kh, kw, k)
            valid = (vy[:, None] & vx[None, :])[None, :, :, None]
            acc = np.where(valid, acc + gy[oh, ow][:, None, None, None] * patch[None], acc)
    return acc


@_ieee
def bias_grad(gy) -> np.ndarray:
    """tt_bias_update_f16's gradient: per channel, the sum over pixels in order (float32)."""
    g = f32(gy).reshape(-1, np.shape(gy)[-1])
    acc = np.zeros(g.shape[1], F32)
    for p in range(g.shape[0]):
        acc = acc + g[p]
    return acc


# --- depthwise conv2d -----------------------------------------------------------------------------

@_ieee
def depthwise(x, w, bias, stride, pad, dil, act, out_hw) -> np.ndarray:
    """tt_depthwise_conv2d_f16: w (kh, kw, C); acc = bias, + x*w over ky, kx."""
    x, w = f32(x), f32(w)
    oh, ow = out_hw
    kh, kw, c = w.shape
    acc = np.zeros((oh, ow, c), F32) + (f32(bias) if bias is not None else F32(0))
    for ky, iy, vy in _axis_taps(oh, x.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ix, vx in _axis_taps(ow, x.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            acc = np.where(valid, acc + x[iy][:, ix] * w[ky, kx], acc)
    return activate(acc, act)


@_ieee
def depthwise_grad_input(gy, w, in_hw, stride, pad, dil) -> np.ndarray:
    gy, w = f32(gy), f32(w)
    kh, kw, c = w.shape
    acc = np.zeros(tuple(in_hw) + (c,), F32)
    for ky, oy, vy in _axis_sources(in_hw[0], gy.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ox, vx in _axis_sources(in_hw[1], gy.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            acc = np.where(valid, acc + gy[oy][:, ox] * w[ky, kx], acc)
    return acc


def _depthwise_patches(x, gy, kh, kw, stride, pad, dil):
    """For each output pixel in row-major order: (its gy, the x patch under its window
    (kh, kw, C), the valid taps (kh, kw, 1))."""
    ih, iw = np.arange(kh) * dil[0], np.arange(kw) * dil[1]
    for oh in range(gy.shape[0]):
        ys = oh * stride[0] - pad[0] + ih
        vy = (ys >= 0) & (ys < x.shape[0])
        for ow in range(gy.shape[1]):
            xs = ow * stride[1] - pad[2] + iw
            vx = (xs >= 0) & (xs < x.shape[1])
            patch = x[np.clip(ys, 0, x.shape[0] - 1)][:, np.clip(xs, 0, x.shape[1] - 1)]
            yield gy[oh, ow], patch, (vy[:, None] & vx[None, :])[..., None]


@_ieee
def depthwise_grad_weight(x, gy, kh, kw, stride, pad, dil, k) -> np.ndarray:
    """(kh, kw, k): per channel, a sum over the output pixels in row-major order."""
    acc = np.zeros((kh, kw, k), F32)
    for d, patch, valid in _depthwise_patches(f32(x)[..., :k], f32(gy)[..., :k], kh, kw, stride, pad, dil):
        acc = np.where(valid, acc + d * patch, acc)
    return acc


# --- fully connected ---------------------------------------------------------------------------

@_ieee
def fully_connected(x, w, bias, act) -> np.ndarray:
    """tt_fully_connected_f16: acc = bias, + x[i] * w[o, i] for i in order."""
    x, w = f32(x).reshape(-1), f32(w)
    acc = (f32(bias) if bias is not None else np.zeros(w.shape[0], F32)).copy()
    for i in range(w.shape[1]):
        acc = acc + x[i] * w[:, i]
    return activate(acc, act)


@_ieee
def fully_connected_grad_input(gy, w) -> np.ndarray:
    gy, w = f32(gy).reshape(-1), f32(w)
    acc = np.zeros(w.shape[1], F32)
    for o in range(w.shape[0]):
        acc = acc + gy[o] * w[o]
    return acc


@_ieee
def fully_connected_grad_weight(x, gy, k) -> np.ndarray:
    """dW[o, j] = gy[o] * x[j]: one product each (float32)."""
    return (f32(gy).reshape(-1)[:, None] * f32(x).reshape(-1)[None, :k]).astype(F32)


# --- the update ---------------------------------------------------------------------------------

@_ieee
def sgd(w, grad, lr, momentum, weight_decay, scale, m=None, master=None):
    """tt_sgd_rule_f16 on float32 gradients: g = grad / loss scale + wd * w; momentum;
    w - lr * g, from the fp32 master copy (mixed) or the half weight (fp16); returns the new
    half weight (and updates m / master in place)."""
    F = F32
    w32 = master if master is not None else f32(w)
    g = (np.asarray(grad, F) / F(scale)).astype(F)
    g = (g + (F(weight_decay) * w32).astype(F)).astype(F)
    if m is not None:
        m[...] = ((F(momentum) * m).astype(F) + g).astype(F)
        g = m
    new = (w32 - (F(lr) * g).astype(F)).astype(F)
    if master is not None:
        master[...] = new
    return new.astype(F16)


# --- the Helium variants (_f16_mve): half lanes, fused multiply-adds ---------------------------

LANES = 8


def _lanes_sum(start: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """bias + lane 0 + ... + lane 7, in float32 in that order."""
    s = np.asarray(start, F32)
    for lane in range(LANES):
        s = (s + acc[..., lane].astype(F32)).astype(F32)
    return s


def _fma_runs(acc, xs, ws, valid=None):
    """Runs of products into the lanes: element e of the run (its last axis) into lane e % 8,
    a partial last 8 predicated (inactive lanes keep their value). xs (..., L), ws broadcast;
    valid (...,) or None: where False the run is skipped."""
    n = xs.shape[-1]
    for c in range(0, n, LANES):
        m = min(LANES, n - c)
        a = np.zeros(xs.shape[:-1] + (LANES,), F16)
        b = np.zeros(ws.shape[:-1] + (LANES,), F16)
        a[..., :m] = xs[..., c:c + m]
        b[..., :m] = ws[..., c:c + m]
        new = fma16(a, b, acc)
        active = np.arange(LANES) < m
        keep = active if valid is None else (active & np.asarray(valid)[..., None])
        acc = np.where(keep, new, acc)
    return acc


CONV_MVE_BLOCK = 4 * LANES      # output channels per pass of tt_conv2d_f16_mve (tt_conv2d_mve_body.h)


def conv2d_f16_mve_scratch_bytes(kh: int, kw: int, cin: int, cout: int) -> int:
    """tt_conv2d_f16_mve's scratch: one block of output channels' weights, tap-major (halves)."""
    block = min(-(-cout // LANES) * LANES, CONV_MVE_BLOCK)
    return 2 * kh * kw * cin * block


@_ieee
def conv2d_mve(x, w, bias, stride, pad, dil, act, out_hw) -> np.ndarray:
    """tt_conv2d_f16_mve: output channels in the lanes, in half: acc = bias, then fma of
    x * w over the taps inside the input in (ky, kx, i) order, then the activation (as the
    depthwise kernel: no rounding after)."""
    x, w = np.asarray(x, F16), np.asarray(w, F16)
    oh_n, ow_n = out_hw
    cout, kh, kw, cin = w.shape
    acc = np.zeros((oh_n, ow_n, cout), F16) + (np.asarray(bias, F16) if bias is not None else F16(0))
    for ky, iy, vy in _axis_taps(oh_n, x.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ix, vx in _axis_taps(ow_n, x.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            xs = x[iy][:, ix]                                   # (OH, OW, Cin)
            for i in range(cin):
                acc = np.where(valid, fma16(xs[..., i:i + 1], w[:, ky, kx, i], acc), acc)
    return _act(acc, act).astype(F16)


def _grad_store(acc16: np.ndarray) -> np.ndarray:
    """Half sums as float32 (exact): the simulation's round_grad then keeps them, and adds an
    old value in one rounding (vaddq_f16)."""
    return acc16.astype(F32)


@_ieee
def conv2d_grad_input_mve(gy, w, in_hw, stride, pad, dil) -> np.ndarray:
    """tt_conv2d_grad_input_f16_mve: per input element (lanes over its channels) fma over
    ky, kx, o of gy * w, in half."""
    gy, w = np.asarray(gy, F16), np.asarray(w, F16)
    cout, kh, kw, cin = w.shape
    acc = np.zeros(tuple(in_hw) + (cin,), F16)
    for ky, oy, vy in _axis_sources(in_hw[0], gy.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ox, vx in _axis_sources(in_hw[1], gy.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            g = gy[oy][:, ox]
            for o in range(cout):
                acc = np.where(valid, fma16(g[..., o:o + 1], w[o, ky, kx, :], acc), acc)
    return _grad_store(acc)


@_ieee
def conv2d_grad_weight_mve(x, gy, kh, kw, stride, pad, dil, k) -> np.ndarray:
    """tt_conv2d_update_weight_f16_mve's gradient: half sums over the output pixels
    (row-major) of gy * x by fma; returned as float32 (exact)."""
    x, gy = np.asarray(x, F16)[..., :k], np.asarray(gy, F16)
    acc = np.zeros((gy.shape[2], kh, kw, k), F16)
    ih, iw = np.arange(kh) * dil[0], np.arange(kw) * dil[1]
    for oh in range(gy.shape[0]):
        ys = oh * stride[0] - pad[0] + ih
        vy = (ys >= 0) & (ys < x.shape[0])
        for ow in range(gy.shape[1]):
            xs = ow * stride[1] - pad[2] + iw
            vx = (xs >= 0) & (xs < x.shape[1])
            patch = x[np.clip(ys, 0, x.shape[0] - 1)][:, np.clip(xs, 0, x.shape[1] - 1)]
            valid = (vy[:, None] & vx[None, :])[None, :, :, None]
            acc = np.where(valid, fma16(gy[oh, ow][:, None, None, None], patch[None], acc), acc)
    return acc.astype(F32)


@_ieee
def fully_connected_mve(x, w, bias, act) -> np.ndarray:
    x, w = np.asarray(x, F16).reshape(-1), np.asarray(w, F16)
    acc = _fma_runs(np.zeros((w.shape[0], LANES), F16), x[None, :], w)
    b = np.zeros(w.shape[0], F32) if bias is None else f32(bias)
    return activate(_lanes_sum(b, acc), act)


@_ieee
def fully_connected_grad_input_mve(gy, w) -> np.ndarray:
    gy, w = np.asarray(gy, F16).reshape(-1), np.asarray(w, F16)
    acc = np.zeros(w.shape[1], F16)
    for o in range(w.shape[0]):
        acc = fma16(gy[o], w[o], acc)
    return _grad_store(acc)


@_ieee
def depthwise_mve(x, w, bias, stride, pad, dil, act, out_hw) -> np.ndarray:
    """tt_depthwise_conv2d_f16_mve: channels in the lanes, in half: acc = bias, then fma of
    x * w over the taps ky, kx inside the input, then the activation (no rounding after)."""
    x, w = np.asarray(x, F16), np.asarray(w, F16)
    kh, kw, c = w.shape
    acc = np.zeros(tuple(out_hw) + (c,), F16) + (np.asarray(bias, F16) if bias is not None else F16(0))
    for ky, iy, vy in _axis_taps(out_hw[0], x.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ix, vx in _axis_taps(out_hw[1], x.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            acc = np.where(valid, fma16(x[iy][:, ix], w[ky, kx], acc), acc)
    return _act(acc, act).astype(F16)


@_ieee
def depthwise_grad_input_mve(gy, w, in_hw, stride, pad, dil) -> np.ndarray:
    """tt_depthwise_conv2d_grad_input_f16_mve: fma of gy * w over ky, kx, in half."""
    gy, w = np.asarray(gy, F16), np.asarray(w, F16)
    kh, kw, c = w.shape
    acc = np.zeros(tuple(in_hw) + (c,), F16)
    for ky, oy, vy in _axis_sources(in_hw[0], gy.shape[0], kh, stride[0], pad[0], dil[0]):
        for kx, ox, vx in _axis_sources(in_hw[1], gy.shape[1], kw, stride[1], pad[2], dil[1]):
            valid = (vy[:, None] & vx[None, :])[..., None]
            acc = np.where(valid, fma16(gy[oy][:, ox], w[ky, kx], acc), acc)
    return _grad_store(acc)


@_ieee
def depthwise_grad_weight_mve(x, gy, kh, kw, stride, pad, dil, k) -> np.ndarray:
    """tt_depthwise_conv2d_update_weight_f16_mve's gradient (kh, kw, k): per channel and tap,
    the half sum over the output pixels (row-major) of gy * x by fma; as float32 (exact)."""
    acc = np.zeros((kh, kw, k), F16)
    for d, patch, valid in _depthwise_patches(np.asarray(x, F16)[..., :k], np.asarray(gy, F16)[..., :k],
                                              kh, kw, stride, pad, dil):
        acc = np.where(valid, fma16(d, patch, acc), acc)
    return acc.astype(F32)


# --- elementwise add / sub, pooling, mean, softmax (portable _f16; the Helium add is the same
# bits: one rounding of an exact sum) -----------------------------------------------------------

@_ieee
def binary(a, b, fn, act) -> np.ndarray:
    """tt_add_f16 / tt_sub_f16: fn(a, b) in float32 (a sum or difference of two halves,
    rounded once), the activation, the rounding to half. Rounding the exact result to float32
    and then to half gives the correctly rounded half (24 >= 2 * 11 + 2 bits), so vaddq_f16
    (add_f16_mve.c) stores the same bits."""
    return activate(fn(f32(a), f32(b)).astype(F32), act)


@_ieee
def add_grad_bcast(gy, fields: dict, sign: float, shape) -> np.ndarray:
    """tt_add_grad_bcast_f16's float32 sums (before the rounding): per element of the operand
    (strides fields a_sh, a_sw, a_sc; 0 where it broadcasts) the sum from 0 of grad_y over
    the output positions that read it, broadcast axes in row-major order, times sign."""
    g = f32(gy).reshape(fields["h"], fields["w"], fields["c"])
    reduced = [ax for ax, k in enumerate(("a_sh", "a_sw", "a_sc")) if not fields[k]]
    kept = [ax for ax in range(3) if ax not in reduced]
    g = np.transpose(g, reduced + kept).reshape((-1,) + tuple(g.shape[ax] for ax in kept))
    acc = np.zeros(g.shape[1:], F32)
    for r in range(g.shape[0]):
        acc = acc + g[r]
    return (F32(sign) * acc).astype(F32).reshape(shape)


@_ieee
def global_avg_pool(x) -> np.ndarray:
    """tt_global_avg_pool_f16: x (H, W, C) -> (C,): the float32 sum over the pixels in order,
    / (H * W) in float32, one rounding."""
    x = f32(x).reshape(-1, np.shape(x)[-1])
    acc = np.zeros(x.shape[1], F32)
    for p in range(x.shape[0]):
        acc = acc + x[p]
    return (acc / F32(x.shape[0])).astype(F32).astype(F16)


@_ieee
def global_avg_pool_grad(gy, in_shape) -> np.ndarray:
    """tt_global_avg_pool_grad_input_f16's float32 values: grad_y[c] / (H * W) at every pixel."""
    h, w = in_shape[-3], in_shape[-2]
    v = (f32(gy).reshape(-1) / F32(h * w)).astype(F32)
    return np.broadcast_to(v, tuple(in_shape)).astype(F32)


def _window_count(n_out, n_in, k, stride, pad):
    """In-bounds taps of each output's window along one axis (tt_window_clip's hi - lo)."""
    o = np.arange(n_out) * stride - pad
    return (np.minimum(o + k, n_in) - np.maximum(o, 0)).astype(np.int64)


@_ieee
def avg_pool2d(x, k, stride, pad, act, out_hw) -> np.ndarray:
    """tt_avg_pool2d_f16: per output the float32 sum from 0 of the in-bounds taps (ky, then
    kx), / their count in float32, the activation, one rounding."""
    x = f32(x)
    oh, ow = out_hw
    acc = np.zeros((oh, ow, x.shape[2]), F32)
    for ky, iy, vy in _axis_taps(oh, x.shape[0], k[0], stride[0], pad[0], 1):
        for kx, ix, vx in _axis_taps(ow, x.shape[1], k[1], stride[1], pad[2], 1):
            valid = (vy[:, None] & vx[None, :])[..., None]
            acc = np.where(valid, acc + x[iy][:, ix], acc)
    count = (_window_count(oh, x.shape[0], k[0], stride[0], pad[0])[:, None]
             * _window_count(ow, x.shape[1], k[1], stride[1], pad[2])[None, :]).astype(F32)
    return activate((acc / count[..., None]).astype(F32), act)


@_ieee
def avg_pool2d_grad(gy, in_hw, k, stride, pad) -> np.ndarray:
    """tt_avg_pool2d_grad_input_f16's float32 sums: each input element gets grad_y / count of
    the outputs whose window holds it, added from 0 in row-major output order."""
    gy = f32(gy)
    oh_n, ow_n, c = gy.shape
    H, W = in_hw
    cy = _window_count(oh_n, H, k[0], stride[0], pad[0])
    cx = _window_count(ow_n, W, k[1], stride[1], pad[2])
    acc = np.zeros((H, W, c), F32)
    for oh in range(oh_n):
        y0 = oh * stride[0] - pad[0]
        rows = slice(max(y0, 0), min(y0 + k[0], H))
        for ow in range(ow_n):
            x0 = ow * stride[1] - pad[2]
            cols = slice(max(x0, 0), min(x0 + k[1], W))
            v = (gy[oh, ow] / F32(cy[oh] * cx[ow])).astype(F32)
            acc[rows, cols] = acc[rows, cols] + v
    return acc


@_ieee
def softmax(x) -> np.ndarray:
    """tt_softmax_f16 on rows (R, D): m = the largest; sum of tt_expf(x - m) in order (float32);
    each half(tt_expf(x - m) / sum)."""
    from ..ieee_math import expf
    x = f32(x)
    e = expf((x - x.max(axis=-1, keepdims=True)).astype(F32))
    s = np.zeros(x.shape[0], F32)
    for i in range(x.shape[1]):
        s = s + e[:, i]
    return (e / s[:, None]).astype(F32).astype(F16)


@_ieee
def softmax_grad(y, gy) -> np.ndarray:
    """tt_softmax_grad_input_f16's float32 values on rows (R, D): dot = sum of gy * y in order,
    then y * (gy - dot)."""
    y, gy = f32(y), f32(gy)
    dot = np.zeros(y.shape[0], F32)
    for i in range(y.shape[1]):
        dot = dot + gy[:, i] * y[:, i]
    return (y * (gy - dot[:, None])).astype(F32)


# --- the shape ops: resize (nearest, bilinear), transposed convolution --------------------------

@_ieee
def resize_nearest_grad(gy, rows, cols, in_hw) -> np.ndarray:
    """tt_resize_nearest_grad_input_f16's float32 sums: each input element adds, from 0, the
    output gradients copied from it in row-major output order."""
    gy = f32(gy)
    oh, ow, c = gy.shape
    acc = np.zeros((in_hw[0], in_hw[1], c), F32)
    r = np.broadcast_to(np.asarray(rows)[:, None], (oh, ow)).reshape(-1)
    k = np.broadcast_to(np.asarray(cols)[None, :], (oh, ow)).reshape(-1)
    np.add.at(acc, (r, k), gy.reshape(-1, c))          # sequential, in index order, float32
    return acc


@_ieee
def resize_bilinear(x, ytab, xtab) -> np.ndarray:
    """tt_resize_bilinear_f16: the float32 kernel's arithmetic on the widened halves, rounded once."""
    from .resize import resize_bilinear_f32
    return resize_bilinear_f32(f32(x), ytab, xtab).astype(F16)


@_ieee
def resize_bilinear_grad(gy, ytab, xtab, in_hw) -> np.ndarray:
    """tt_resize_bilinear_grad_input_f16's float32 sums: each input element adds, from 0, gy *
    weight over the outputs in row-major order and, within one, its taps (lo, lo), (hi, lo),
    (lo, hi), (hi, hi) of (row, column); weights (1 - wy)(1 - wx), wy(1 - wx), (1 - wy)wx, wy wx
    in float32."""
    (y0, y1, wy), (x0, x1, wx) = ytab, xtab
    gy = f32(gy)
    oh, ow, c = gy.shape
    one = F32(1)
    wy, wx = np.asarray(wy, F32)[:, None], np.asarray(wx, F32)[None, :]
    weights = np.stack([(one - wy) * (one - wx), wy * (one - wx), (one - wy) * wx, wy * wx], -1).astype(F32)
    ry = [np.broadcast_to(np.asarray(t)[:, None], (oh, ow)) for t in (y0, y1, y0, y1)]
    rx = [np.broadcast_to(np.asarray(t)[None, :], (oh, ow)) for t in (x0, x0, x1, x1)]
    rows, cols = np.stack(ry, -1).reshape(-1), np.stack(rx, -1).reshape(-1)
    vals = (gy[:, :, None, :] * weights[..., None]).astype(F32)            # (OH, OW, 4, C)
    acc = np.zeros((in_hw[0], in_hw[1], c), F32)
    np.add.at(acc, (rows, cols), vals.reshape(-1, c))
    return acc


@_ieee
def transpose_conv(x, w, bias, stride, pad_tl, act, out_hw) -> np.ndarray:
    """tt_transpose_conv_f16: x (H, W, Cin), w OHWI; per output acc = bias, then + x * w over
    the taps (ky, kx) that reach it (input (oy + top - ky) / stride where that divides and lies
    inside) and the input channels i, in that order; the activation, one rounding."""
    x, w = f32(x), f32(w)
    oh, ow = out_hw
    cout, kh, kw, cin = w.shape
    acc = np.zeros((oh, ow, cout), F32) + (f32(bias) if bias is not None else F32(0))
    for ky, iy, vy in _axis_sources(oh, x.shape[0], kh, stride[0], pad_tl[0], 1):
        for kx, ix, vx in _axis_sources(ow, x.shape[1], kw, stride[1], pad_tl[1], 1):
            valid = (vy[:, None] & vx[None, :])[..., None]
            xs = x[iy][:, ix]                                   # (OH, OW, Cin)
            for i in range(cin):
                acc = np.where(valid, acc + xs[..., i:i + 1] * w[:, ky, kx, i], acc)
    return activate(acc, act)


@_ieee
def transpose_conv_grad_input(gy, w, stride, pad_tl, in_hw) -> np.ndarray:
    """tt_transpose_conv_grad_input_f16's float32 sums: gx[iy, ix, i] = the sum from 0 over the
    taps ky, kx (output (iy*stride - top + ky, ...) inside) and output channels o, in that
    order, of gy * w[o, ky, kx, i]."""
    gy, w = f32(gy), f32(w)
    cout, kh, kw, cin = w.shape
    acc = np.zeros(tuple(in_hw) + (cin,), F32)
    for ky, oy, vy in _axis_taps(in_hw[0], gy.shape[0], kh, stride[0], pad_tl[0], 1):
        for kx, ox, vx in _axis_taps(in_hw[1], gy.shape[1], kw, stride[1], pad_tl[1], 1):
            valid = (vy[:, None] & vx[None, :])[..., None]
            g = gy[oy][:, ox]                                   # (H, W, Cout)
            for o in range(cout):
                acc = np.where(valid, acc + g[..., o:o + 1] * w[o, ky, kx, :], acc)
    return acc


@_ieee
def transpose_conv_mve(x, w, bias, stride, pad_tl, act, out_hw) -> np.ndarray:
    """tt_transpose_conv_f16_mve: output channels in the lanes, in half: acc = bias, then fma
    of x * w over the taps (ky, kx) that reach the output and the input channels i, in that
    order; then the activation (no rounding after)."""
    x, w = np.asarray(x, F16), np.asarray(w, F16)
    oh, ow = out_hw
    cout, kh, kw, cin = w.shape
    acc = np.zeros((oh, ow, cout), F16) + (np.asarray(bias, F16) if bias is not None else F16(0))
    for ky, iy, vy in _axis_sources(oh, x.shape[0], kh, stride[0], pad_tl[0], 1):
        for kx, ix, vx in _axis_sources(ow, x.shape[1], kw, stride[1], pad_tl[1], 1):
            valid = (vy[:, None] & vx[None, :])[..., None]
            xs = x[iy][:, ix]
            for i in range(cin):
                acc = np.where(valid, fma16(xs[..., i:i + 1], w[:, ky, kx, i], acc), acc)
    return _act(acc, act).astype(F16)


@_ieee
def transpose_conv_grad_input_mve(gy, w, stride, pad_tl, in_hw) -> np.ndarray:
    """tt_transpose_conv_grad_input_f16_mve: per input element (lanes over its channels) fma
    over ky, kx, o of gy * w, in half; as float32 (exact)."""
    gy, w = np.asarray(gy, F16), np.asarray(w, F16)
    cout, kh, kw, cin = w.shape
    acc = np.zeros(tuple(in_hw) + (cin,), F16)
    for ky, oy, vy in _axis_taps(in_hw[0], gy.shape[0], kh, stride[0], pad_tl[0], 1):
        for kx, ox, vx in _axis_taps(in_hw[1], gy.shape[1], kw, stride[1], pad_tl[1], 1):
            valid = (vy[:, None] & vx[None, :])[..., None]
            g = gy[oy][:, ox]
            for o in range(cout):
                acc = np.where(valid, fma16(g[..., o:o + 1], w[o, ky, kx, :], acc), acc)
    return _grad_store(acc)


# --- mul, maximum / minimum (portable _f16; their Helium variants store the same bits) ----------

def _hwc(a, fields: dict) -> np.ndarray:
    return np.asarray(a).reshape(fields["h"], fields["w"], fields["c"])


@_ieee
def bcast_sum(terms, fields: dict, shape) -> np.ndarray:
    """tt_bcast_grad_f16.h's float32 sums (before the rounding) of float32 terms laid out as
    the output: per element of the operand (strides fields a_sh, a_sw, a_sc; 0 where it
    broadcasts) the sum from 0 over the output positions that read it, broadcast axes in
    row-major order."""
    g = _hwc(np.asarray(terms, F32), fields)
    reduced = [ax for ax, k in enumerate(("a_sh", "a_sw", "a_sc")) if not fields[k]]
    kept = [ax for ax in range(3) if ax not in reduced]
    g = np.transpose(g, reduced + kept).reshape((-1,) + tuple(g.shape[ax] for ax in kept))
    acc = np.zeros(g.shape[1:], F32)
    for r in range(g.shape[0]):
        acc = acc + g[r]
    return acc.reshape(shape)


@_ieee
def mul_grad(gy, other, fields: dict, shape) -> np.ndarray:
    """The float32 values tt_mul_grad_input_f16 / tt_mul_grad_bcast_f16 round (the simulation's
    round_grad): gy * other is exact in float32; an operand of the output's shape takes each
    product rounded to half (tt_mul_grad_input_f16 adds that half to an old one: round_grad's
    half(old + value)), an operand that broadcasts the float32 sum of the products (bcast_sum).
    other: the other operand broadcast to the output's shape."""
    p = (f32(gy).reshape(np.shape(other)) * f32(other)).astype(F32)
    if int(np.prod(shape)) == p.size:         # x walks as the output: no sum
        return p.astype(F16).astype(F32).reshape(shape)
    return bcast_sum(p, fields, shape)


@_ieee
def select(a, b, minimum: bool) -> np.ndarray:
    """tt_maximum_f16 / tt_minimum_f16 (and the _bcast and Helium forms): a > b ? a : b
    (minimum a < b ? a : b) on the widened values, the selected half's bits. A NaN first
    operand gives b, a NaN second operand gives that NaN; of -0 and +0 the second."""
    a, b = np.asarray(a, F16), np.asarray(b, F16)
    take_a = f32(a) < f32(b) if minimum else f32(a) > f32(b)
    return np.where(take_a, a, b)


@_ieee
def select_wins(x, other, first: bool, minimum: bool) -> np.ndarray:
    """Where operand x receives the gradient: x > other (minimum x < other), or equal when x
    is the first operand (the float32 training's rule); a NaN on either side: nowhere."""
    x, other = f32(x), f32(other)
    strict = x < other if minimum else x > other
    return strict | (x == other) if first else strict


@_ieee
def select_grad(gy, x, other, first: bool, minimum: bool, fields: dict, shape) -> np.ndarray:
    """The float32 values tt_maximum_grad_input_f16 / _grad_bcast_f16 (minimum) round: grad_y
    where x wins, else +0 (x, other broadcast to the output's shape); an operand of the
    output's shape takes them as they are (exact halves), one that broadcasts their sums
    (bcast_sum)."""
    d = np.where(select_wins(x, other, first, minimum), f32(gy).reshape(np.shape(x)), F32(0)).astype(F32)
    if int(np.prod(shape)) == d.size:
        return d.reshape(shape)
    return bcast_sum(d, fields, shape)
