"""The predicted class of a model's outputs, as the device picks it (firmware/include/tt_argmax.h).

The largest output wins; where several are equal (an int8 output rounds close logits to one
value) the tie is broken by a hash (FNV-1a) of the output's bytes, uniformly over the tied
classes instead of towards the lowest index, which would favour the classes a model had before
new ones were appended. numpy's argmax takes the first: use `predicted_class` wherever a
prediction is compared with the device's.
"""
from __future__ import annotations

import numpy as np

FNV_OFFSET, FNV_PRIME = np.uint32(2166136261), np.uint32(16777619)


def fnv1a_rows(b: np.ndarray) -> np.ndarray:
    """FNV-1a 32-bit of every row of a uint8 matrix."""
    h = np.full(len(b), FNV_OFFSET, np.uint32)
    with np.errstate(over="ignore"):
        for j in range(b.shape[1]):
            h = (h ^ b[:, j]) * FNV_PRIME
    return h


def predicted_class(outputs: np.ndarray) -> np.ndarray:
    """outputs: (samples, ...) in the model's output dtype (int8 or float32), as the device
    holds them. The class of each sample, bit for bit the device's `tt_argmax_*`."""
    y = np.ascontiguousarray(outputs)
    y = y.reshape(len(y), -1)
    n = y.shape[1]
    rows = np.arange(len(y))
    best = np.zeros(len(y), np.int64)
    for i in range(1, n):                 # `if (y[i] > y[best]) best = i;`, NaN as C compares it
        best = np.where(y[:, i] > y[rows, best], i, best)
    with np.errstate(invalid="ignore"):
        tied = (y == y[rows, best][:, None]) & (np.arange(n) >= best[:, None])
    count = tied.sum(axis=1)
    out = best.copy()
    many = count >= 2
    if many.any():
        pick = fnv1a_rows(y[many].view(np.uint8).reshape(int(many.sum()), -1)) % count[many].astype(np.uint32)
        rank = np.cumsum(tied[many], axis=1) - 1          # the rank of each tied class
        out[many] = np.argmax(tied[many] & (rank == pick[:, None].astype(np.int64)), axis=1)
    return out
