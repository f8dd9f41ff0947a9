"""A trainable parameter's values as the device stores them, from whatever array a user gives.

Half-precision parameters (precision fp16 / mixed) are read as float16, or as float32 (every
half is exactly a float32), and written from float16 or from any float array whose every value
is exactly a half: a value that is not is refused, naming the parameter, rather than rounded
(a weights push never changes what the user trained). Other dtypes convert as numpy does.
"""
from __future__ import annotations

import numpy as np

from .errors import TinyTrainError


def to_device(name: str, values, numpy_dtype: str) -> bytes:
    """The bytes of `values` in the device's dtype (a numpy dtype string such as "<f2")."""
    arr = np.asarray(values)
    dt = np.dtype(numpy_dtype)
    if dt == np.dtype("<f2") and arr.dtype != dt:
        if not np.issubdtype(arr.dtype, np.floating):
            raise TinyTrainError(f"parameter {name!r} is float16: give float16 or float32 values, not {arr.dtype}")
        with np.errstate(over="ignore"):
            half = arr.astype(dt)
        same = (half.astype(np.float64) == arr.astype(np.float64)) | (np.isnan(half) & np.isnan(arr))
        if not same.all():
            bad = int(np.flatnonzero(~same.reshape(-1))[0])
            raise TinyTrainError(f"parameter {name!r} is float16 on the device: value {arr.reshape(-1)[bad]!r} "
                                 f"(element {bad}) is not a half-precision number; round it first "
                                 "(np.float16) if that is meant")
        arr = half
    return np.ascontiguousarray(arr, dtype=dt).tobytes()


def from_device(data: bytes, numpy_dtype: str, as_float32: bool = False) -> np.ndarray:
    """A parameter's values from its device bytes (half parameters widened if as_float32)."""
    arr = np.frombuffer(data, dtype=numpy_dtype).copy()
    if as_float32 and arr.dtype == np.dtype("<f2"):
        return arr.astype(np.float32)
    return arr
