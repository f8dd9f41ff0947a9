"""Shape arithmetic on constants, computed at import with numpy.

A Keras model converted with a dynamic batch dimension computes the target shape of a
Flatten at run time: SHAPE(x) -> STRIDED_SLICE (the batch) -> PACK with -1 -> RESHAPE. With
every activation shape static (batch 1), such chains are constant: the .tflite frontend
folds them here and keeps only the RESHAPE. Only integer (int32 / int64) values are folded;
each function follows its TFLite builtin's semantics for the cases shape code produces.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyTrainError

# TFLite builtins folded when all their inputs are constant integers (SHAPE needs only a
# static input shape). Options each needs are read by the frontend into `opts`.
FOLDABLE = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER", "SQUEEZE",
            "EXPAND_DIMS", "RESHAPE", "CAST", "ADD", "SUB", "MUL", "FLOOR_DIV", "REDUCE_PROD")


def strided_slice(x: np.ndarray, begin, end, strides, begin_mask: int = 0, end_mask: int = 0,
                  shrink_axis_mask: int = 0, offset: bool = False) -> np.ndarray:
    """TFLite STRIDED_SLICE without ellipsis / new-axis masks (the frontend refuses those)."""
    begin, end, strides = (np.asarray(v, np.int64).reshape(-1) for v in (begin, end, strides))
    if not (len(begin) == len(end) == len(strides)) or len(begin) > x.ndim:
        raise TinyTrainError(f"STRIDED_SLICE of a rank-{x.ndim} tensor with begin {begin.tolist()}, "
                             f"end {end.tolist()}, strides {strides.tolist()}")
    index: list = []
    for axis in range(len(begin)):
        step, dim = int(strides[axis]), x.shape[axis]
        if step == 0:
            raise TinyTrainError("STRIDED_SLICE with a zero stride")
        b, e = int(begin[axis]), int(end[axis]) + (int(begin[axis]) if offset else 0)
        if begin_mask >> axis & 1:
            b = 0 if step > 0 else dim - 1
        if shrink_axis_mask >> axis & 1:
            i = b + dim if b < 0 else b
            if not 0 <= i < dim:
                raise TinyTrainError(f"STRIDED_SLICE index {b} out of range for a dimension of {dim}")
            index.append(i)
            continue
        index.append(slice(None if begin_mask >> axis & 1 else b,
                           None if end_mask >> axis & 1 else e, step))
    return np.asarray(x[tuple(index)])


def fold(kind: str, values: list[np.ndarray], opts: dict, out_dtype) -> np.ndarray:
    """The value of a TFLite `kind` op whose inputs hold `values` (SHAPE: the input's shape)."""
    if kind == "SHAPE":
        out = np.array(values[0], dtype=np.int64)
    elif kind == "STRIDED_SLICE":
        out = strided_slice(*values[:4], **opts)
    elif kind == "PACK":
        out = np.stack(values, axis=opts["axis"])
    elif kind == "CONCATENATION":
        out = np.concatenate([np.atleast_1d(v) for v in values], axis=opts["axis"])
    elif kind == "GATHER":
        if opts["batch_dims"] != 0:
            raise TinyTrainError("GATHER with batch_dims on constants")
        out = np.take(values[0], values[1], axis=opts["axis"])
    elif kind == "SQUEEZE":
        dims = tuple(opts["squeeze_dims"]) or None
        out = np.squeeze(values[0], axis=dims)
    elif kind == "EXPAND_DIMS":
        out = np.expand_dims(values[0], int(np.asarray(values[1]).reshape(-1)[0]))
    elif kind == "RESHAPE":
        shape = values[1] if len(values) > 1 else opts["new_shape"]
        out = values[0].reshape([int(d) for d in np.asarray(shape).reshape(-1)])
    elif kind == "CAST":
        out = values[0]
    elif kind in ("ADD", "SUB", "MUL", "FLOOR_DIV"):
        a, b = (np.asarray(v, np.int64) for v in values[:2])
        if kind == "FLOOR_DIV" and np.any(b == 0):
            raise TinyTrainError("FLOOR_DIV by zero in constant shape arithmetic")
        out = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "FLOOR_DIV": np.floor_divide}[kind](a, b)
    elif kind == "REDUCE_PROD":
        axes = tuple(int(a) for a in np.asarray(values[1]).reshape(-1))
        out = np.prod(np.asarray(values[0], np.int64), axis=axes, keepdims=opts["keep_dims"])
    else:
        raise TinyTrainError(f"cannot fold {kind}")
    return np.asarray(out).astype(out_dtype)
