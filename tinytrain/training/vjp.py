"""The losses of a training step and the derivative of activations, in numpy.

The vector-Jacobian product of each op lives in its unit (tinytrain/ops/, `vjp`); the host
simulation (simulate.py) calls those, and these for the loss and the 1-bit masks.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


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


def softmax(x, beta=1.0):
    z = x.astype(np.float64) * beta
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(F32)


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
