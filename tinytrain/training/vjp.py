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
    p = softmax(logits).astype(np.float64)
    z = logits.astype(np.float64).reshape(-1)
    lse = z.max() + np.log(np.exp(z - z.max()).sum())
    loss = float(lse - z[label])
    grad = p.copy()
    grad.reshape(-1)[label] -= 1.0
    return loss, grad.astype(F32)


def mse(y: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    """Mean squared error against the one-hot vector of `label`."""
    t = np.zeros(y.size)
    t[label] = 1.0
    d = y.astype(np.float64).reshape(-1) - t
    return float((d * d).mean()), (2.0 * d / y.size).reshape(y.shape).astype(F32)
