"""Sample files: `.npz` with `x` (and optional `y`), or `.csv` (label in the last column).

`load_samples` reads a file; `check_samples` checks what was read against a model's input
and output (shapes, dtype, finite values, label range) before anything runs on it, so a
wrong file is refused with the shapes expected and found instead of being misread. Every
command that feeds samples to a model goes through both.
"""
from __future__ import annotations

import math
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import TinyTrainError

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def load_samples(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y or None) from a sample file; a file that cannot be read is a TinyTrainError
    naming it, never a traceback."""
    try:
        return _load_samples(Path(path))
    except TinyTrainError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as exc:
        raise TinyTrainError(f"data file {str(path)!r} cannot be read: {exc or type(exc).__name__}") from None


def _load_samples(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.exists():
        raise TinyTrainError(f"data file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        x, y = _load_npz(path)
    elif path.suffix == ".csv":
        x, y = _load_csv(path)
    else:
        raise TinyTrainError(f"data file {str(path)!r}: expected .npz or .csv")
    if y is not None and np.ndim(y) >= 1 and np.ndim(x) >= 1 and len(y) != len(x):
        raise TinyTrainError(f"data file {str(path)!r}: {len(x)} samples but {len(y)} labels")
    return x, _class_indices(y)


def _class_indices(y):
    """Whole-number labels as int64; anything else is left for check_samples to refuse."""
    if y is None or y.dtype.kind not in "iuf" or not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
        return y
    if y.dtype.kind == "f" and np.any(np.abs(y) >= 2.0 ** 62):
        return y
    return y.astype(np.int64)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files:
                raise TinyTrainError(f"data file {str(path)!r}: no array named 'x' (has {sorted(z.files)})")
            x = z["x"]
            y = z["y"] if "y" in z.files else None
    except TinyTrainError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        # a truncated or damaged archive, or object arrays (which would need pickle)
        raise TinyTrainError(f"data file {str(path)!r}: not a readable .npz ({type(e).__name__}: {e})") from None
    return x, y


def _load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with warnings.catch_warnings():      # an empty file: refused below, with a message
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise TinyTrainError(f"data file {str(path)!r}: not a numeric CSV ({exc})") from None
    if table.shape[0] == 0 or table.shape[1] < 2:
        raise TinyTrainError(f"data file {str(path)!r}: expected rows of features then a label, "
                             f"found a table of shape {table.shape}")
    return table[:, :-1].astype(np.float32), table[:, -1]


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape if d != 1)


def check_samples(x, y, input_shape, n_outputs: int | None, source: str,
                  need_labels: bool = False, input_dtype: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Check samples read from `source` against a model with input `input_shape` (batch
    first, as in the IR), of `input_dtype` ("int8" or "float32"; None: not checked) and
    `n_outputs` classes; return (x, y) with labels as int64. The one check of samples:
    for the host (`run`, `evaluate MODEL`) and for a device (`train`, `evaluate --port`,
    from its DESCRIBE: check_samples_for_device).

    x must be numeric and finite, shaped (N,) + input_shape[1:], or so up to axes of size 1
    ((N, 8, 8) for an (8, 8, 1) input, (N, T, F) for a (1, T, F) sequence), or (N, features)
    with as many features as one input holds (a CSV row); integers for an int8 input within
    [-128, 127]. y must be (N,) whole numbers in [0, n_outputs). Errors name the expected and
    found shapes, and the first sample or label at fault."""
    sample_shape = tuple(int(d) for d in input_shape[1:])
    features = math.prod(sample_shape)
    # a (T, F) sequence model holds its input as (1, 1, T, F): (N, T, F) samples fit it too
    squeezed = sample_shape[1:] if len(sample_shape) == 3 and sample_shape[0] == 1 else None
    expected = (f"(N, {', '.join(map(str, sample_shape))})"
                + (f" or (N, {', '.join(map(str, squeezed))})" if squeezed else "")
                + (f" or (N, {features})" if len(sample_shape) > 1 else ""))
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise TinyTrainError(f"{source}: samples 'x' of dtype {x.dtype}; numbers expected, shaped {expected}")
    if x.ndim == 0 or len(x) == 0:
        raise TinyTrainError(f"{source}: no samples in 'x' (shape {x.shape}); expected {expected}")
    fits = (x.shape[1:] == sample_shape or _squeezed(x.shape[1:]) == _squeezed(sample_shape)
            or (x.ndim == 2 and x.shape[1] == features))
    if not fits:
        raise TinyTrainError(f"{source}: samples 'x' of shape {x.shape} (each {tuple(x.shape[1:])}); the model "
                             f"takes {expected}")
    rows = x.reshape(len(x), -1)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(rows) | (np.abs(np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)) > _FLOAT32_MAX)
        if bad.any():
            first = int(np.argmax(bad.any(axis=1)))
            raise TinyTrainError(f"{source}: {int(bad.sum())} values of 'x' are NaN, infinite or beyond "
                                 f"float32 (the first in sample {first})")
    elif input_dtype == "int8" and x.dtype != np.int8:
        bad = ((rows < -128) | (rows > 127)).any(axis=1)
        if bad.any():
            raise TinyTrainError(f"{source}: sample {int(np.argmax(bad))} has values outside the int8 input's "
                                 f"[-128, 127] ({int(bad.sum())} such samples)")
    if y is None:
        if need_labels:
            raise TinyTrainError(f"{source}: no labels 'y'; expected shape ({len(x)},)")
        return x, None
    y = np.asarray(y)
    if y.dtype.kind not in "iuf" or y.shape != (len(x),):
        raise TinyTrainError(f"{source}: labels of shape {y.shape} and dtype {y.dtype}; expected "
                             f"({len(x)},) class indices, one per sample (not one-hot)")
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise TinyTrainError(f"{source}: labels 'y' must be whole numbers (class indices)")
    labels = y.astype(np.int64)
    if n_outputs is not None:
        bad = (labels < 0) | (labels >= n_outputs)
        if bad.any():
            i = int(np.argmax(bad))
            raise TinyTrainError(f"{source}: label {i} is {labels[i]}: the model has {n_outputs} outputs, so 0 to "
                                 f"{n_outputs - 1} expected ({int(bad.sum())} labels out of range, from "
                                 f"{labels.min()} to {labels.max()})")
    return x, labels


def check_samples_for_device(x, y, description, source: str, need_labels: bool = True):
    """check_samples against the model a device described (a tinytrain.link.Description):
    (x as one flat row per sample, y)."""
    from . import protocol as P
    dtype = "int8" if description.input_dtype == P.DTYPE_S8 else "float32"
    x, y = check_samples(x, y, description.input_shape, description.output_size, source,
                         need_labels=need_labels, input_dtype=dtype)
    return x.reshape(len(x), -1), y
