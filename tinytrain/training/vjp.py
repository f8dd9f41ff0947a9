"""Float32 forward ops and their vector-Jacobian products, in numpy (NHWC, batch 1).

The host simulation of a training step (simulate.py) runs these; they also define what
the C backward kernels must compute. Every backward works on real values: int8 graphs
hand in dequantized activations and weights (straight-through requantization).
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


def _pad(x: np.ndarray, pad, value=0.0) -> np.ndarray:
    t, b, l, r = pad
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _window(xp: np.ndarray, i: int, j: int, oh: int, ow: int, stride, dil) -> np.ndarray:
    """xp[:, i*dh + sh*h, j*dw + sw*w, :] for h < oh, w < ow (a strided view)."""
    sh, sw = stride
    dh, dw = dil
    return xp[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw, :]


def activation(y: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(y, F32(0))
    if act == "relu6":
        return np.minimum(np.maximum(y, F32(0)), F32(6))
    return y


def activation_mask(y: np.ndarray, act: str) -> np.ndarray:
    """d act / d pre-activation, read from the output (what the 1-bit masks store)."""
    if act == "relu":
        return y > 0
    if act == "relu6":
        return (y > 0) & (y < 6)
    return np.ones(y.shape, bool)


# --- forward -------------------------------------------------------------------------

def conv2d(x, w, b, stride, pad, dil, out_hw):
    oh, ow = out_hw
    xp = _pad(x, pad)
    y = np.zeros((1, oh, ow, w.shape[0]), np.float64)
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            y += _window(xp, i, j, oh, ow, stride, dil).astype(np.float64) @ w[:, i, j, :].T.astype(np.float64)
    return (y + b).astype(F32)


def depthwise_conv2d(x, w, b, stride, pad, dil, out_hw):
    oh, ow = out_hw
    xp = _pad(x, pad)
    y = np.zeros((1, oh, ow, w.shape[2]), np.float64)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            y += _window(xp, i, j, oh, ow, stride, dil) * w[i, j, :].astype(np.float64)
    return (y + b).astype(F32)


def fully_connected(x, w, b):
    return (x.astype(np.float64) @ w.T.astype(np.float64) + b).astype(F32)


def pool2d(x, kernel, stride, pad, out_hw, kind):
    oh, ow = out_hw
    fill = -np.inf if kind == "max" else 0.0
    xp = _pad(x.astype(np.float64), pad, fill)
    ones = _pad(np.ones_like(x, np.float64), pad, 0.0)
    acc = np.full((1, oh, ow, x.shape[3]), fill)
    cnt = np.zeros_like(acc)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win = _window(xp, i, j, oh, ow, stride, (1, 1))
            if kind == "max":
                acc = np.maximum(acc, win)
            else:
                acc = acc + win
                cnt = cnt + _window(ones, i, j, oh, ow, stride, (1, 1))
    return (acc if kind == "max" else acc / cnt).astype(F32)


def softmax(x, beta=1.0):
    z = x.astype(np.float64) * beta
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(F32)


# --- backward ------------------------------------------------------------------------

def _conv_backward_start(x, dy, pad, need_dx):
    """(padded x, dy in float64, the zeroed padded-dx accumulator or None) of a conv backward."""
    xp = _pad(x, pad)
    return xp, dy.astype(np.float64), (np.zeros(xp.shape, np.float64) if need_dx else None)


def _conv_backward_result(dxp, dw, dy64, pad):
    """(dx, dW, db) in float32 from the float64 sums: dx without its padding (None if not computed)."""
    dx = None if dxp is None else pad_backward(dxp, pad).astype(F32)
    return dx, dw.astype(F32), dy64.sum(axis=(0, 1, 2)).astype(F32)


def conv2d_backward(x, w, dy, stride, pad, dil, need_dx=True, k=None):
    """(dx, dW[..., :k], db) of y = conv2d(x, w) + b; dx None unless need_dx."""
    _, oh, ow, _ = dy.shape
    k = w.shape[3] if k is None else k
    xp, dy64, dxp = _conv_backward_start(x, dy, pad, need_dx)
    dw = np.zeros(w.shape[:3] + (k,), np.float64)
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            win = _window(xp, i, j, oh, ow, stride, dil)
            dw[:, i, j, :] = np.einsum("nhwo,nhwc->oc", dy64, win[..., :k])
            if need_dx:
                _window(dxp, i, j, oh, ow, stride, dil)[...] += dy64 @ w[:, i, j, :].astype(np.float64)
    return _conv_backward_result(dxp, dw, dy64, pad)


def depthwise_conv2d_backward(x, w, dy, stride, pad, dil, need_dx=True, k=None):
    """(dx, dW[..., :k], db); k: trained channels [0, k) of the weight."""
    _, oh, ow, c = dy.shape
    k = c if k is None else k
    xp, dy64, dxp = _conv_backward_start(x, dy, pad, need_dx)
    dw = np.zeros(w.shape[:2] + (k,), np.float64)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            win = _window(xp, i, j, oh, ow, stride, dil)
            dw[i, j, :] = np.einsum("nhwc,nhwc->c", dy64[..., :k], win[..., :k])
            if need_dx:
                _window(dxp, i, j, oh, ow, stride, dil)[...] += dy64 * w[i, j, :].astype(np.float64)
    return _conv_backward_result(dxp, dw, dy64, pad)


def fully_connected_backward(x, w, dy, need_dx=True, k=None):
    k = w.shape[1] if k is None else k
    dy64 = dy.astype(np.float64)
    dx = (dy64 @ w.astype(np.float64)).astype(F32) if need_dx else None
    dw = (dy64.T @ x[:, :k].astype(np.float64)).astype(F32)
    return dx, dw, dy64.sum(axis=0).astype(F32)


def pool2d_backward(x, dy, kernel, stride, pad, kind):
    """avg: spread over the valid (non-padding) elements; max: to the first maximum."""
    _, oh, ow, c = dy.shape
    dy64 = dy.astype(np.float64)
    xp = _pad(x.astype(np.float64), pad, -np.inf if kind == "max" else 0.0)
    dxp = np.zeros(xp.shape, np.float64)
    if kind == "avg":
        ones = _pad(np.ones_like(x, np.float64), pad, 0.0)
        cnt = np.zeros(dy.shape)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                cnt += _window(ones, i, j, oh, ow, stride, (1, 1))
        g = dy64 / cnt
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                _window(dxp, i, j, oh, ow, stride, (1, 1))[...] += g * _window(ones, i, j, oh, ow, stride, (1, 1))
    else:
        best = np.full(dy.shape, -np.inf)
        arg = np.zeros(dy.shape, np.int64)
        for n, (i, j) in enumerate((i, j) for i in range(kernel[0]) for j in range(kernel[1])):
            win = _window(xp, i, j, oh, ow, stride, (1, 1))
            better = win > best
            best = np.where(better, win, best)
            arg = np.where(better, n, arg)
        for n, (i, j) in enumerate((i, j) for i in range(kernel[0]) for j in range(kernel[1])):
            _window(dxp, i, j, oh, ow, stride, (1, 1))[...] += np.where(arg == n, dy64, 0.0)
    return pad_backward(dxp, pad).astype(F32)


def softmax_backward(y, dy, beta=1.0):
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    return (beta * y64 * (dy64 - (dy64 * y64).sum(axis=-1, keepdims=True))).astype(F32)


def pad_backward(dy, pad):
    """The gradient of the unpadded input: dy without its padding rows and columns (a view)."""
    t, b, l, r = pad
    return dy[:, t: dy.shape[1] - b, l: dy.shape[2] - r, :]


# --- losses ----------------------------------------------------------------------------

def softmax_cross_entropy(logits: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    """(loss, d loss / d logits) of float logits, bit for bit as tt_softmax_cross_entropy_f32:
    float32 throughout, tt_expf / tt_logf (tinytrain.ieee_math), sums in the C loop's order."""
    z = np.asarray(logits, F32).reshape(-1)
    return _softmax_cross_entropy_shifted((z - z.max()).astype(F32), label, logits.shape)


def softmax_cross_entropy_s8(q: np.ndarray, scale: float, label: int) -> tuple[float, np.ndarray]:
    """The same on int8 logits (real = scale * (q - zero point); the zero point cancels),
    bit for bit as tt_softmax_cross_entropy_s8: the shifted logits are scale * (q - max q)."""
    q = np.asarray(q).reshape(-1).astype(np.int32)
    shifted = (F32(scale) * (q - q.max()).astype(F32)).astype(F32)
    return _softmax_cross_entropy_shifted(shifted, label, np.shape(q))


def _softmax_cross_entropy_shifted(shifted: np.ndarray, label: int, shape) -> tuple[float, np.ndarray]:
    """From logits minus their max: loss = log(sum exp) - shifted[label], grad = softmax - onehot."""
    from ..ieee_math import expf, logf, sum_sequential
    if not 0 <= label < shifted.size:
        return float("nan"), np.zeros(shape, F32)
    e = expf(shifted)
    total = sum_sequential(e)
    grad = (e / total).astype(F32)
    grad[label] = grad[label] - F32(1.0)
    loss = F32(logf(total) - shifted[label])
    return float(loss), grad.reshape(shape)


def mse(y: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    """Mean squared error against the one-hot vector of `label`."""
    t = np.zeros(y.size)
    t[label] = 1.0
    d = y.astype(np.float64).reshape(-1) - t
    return float((d * d).mean()), (2.0 * d / y.size).reshape(y.shape).astype(F32)
