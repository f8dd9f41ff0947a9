"""Sample files for a device (`tinytrain train --data/--eval`), checked whole before the
first sample is sent: a file that cannot be read (a truncated .npz), samples whose shape is
not the model input's, values the input cannot hold (NaN, infinity, int8 out of range),
labels that are not classes of the model. Each is a TinyTrainError naming the file, and the
sample or label at fault, so the device never learns from half a file."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import protocol as P
from .datasets import load_samples
from .errors import TinyTrainError


def _squeeze(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape if d != 1)


def read_samples(path) -> tuple[np.ndarray, np.ndarray | None]:
    """load_samples, with unreadable files as a clear error instead of a traceback."""
    try:
        return load_samples(path)
    except TinyTrainError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as exc:
        raise TinyTrainError(f"data file {str(path)!r} cannot be read: {exc or type(exc).__name__}") from None


def check_samples(name: str, x: np.ndarray, y: np.ndarray | None, description, *,
                  labels_required: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """x as (n, input size) and y as int64 labels, after checking both against the device's
    model (a tinytrain.link.Description)."""
    d = description
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise TinyTrainError(f"{name}: no samples")
    if x.dtype.kind not in "biuf":
        raise TinyTrainError(f"{name}: samples of type {x.dtype} are not numbers")
    found = tuple(int(s) for s in x.shape[1:])
    if _squeeze(found) != _squeeze(d.input_shape) and found != (d.input_size,):   # or one flat row each
        raise TinyTrainError(f"{name}: samples of shape {found} (array {tuple(x.shape)}); the model input "
                             f"is {tuple(d.input_shape)} ({d.input_size} values per sample)")
    flat = x.reshape(len(x), -1)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise TinyTrainError(f"{name}: sample {i} holds NaN or infinite values "
                                 f"({int(bad.sum())} such samples)")
    elif d.input_dtype == P.DTYPE_S8 and x.dtype != np.int8:
        bad = ((flat < -128) | (flat > 127)).any(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise TinyTrainError(f"{name}: sample {i} has values outside the int8 input's [-128, 127]")
    if y is None:
        if labels_required:
            raise TinyTrainError(f"{name}: training needs labels (y)")
        return flat, None
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise TinyTrainError(f"{name}: labels of shape {tuple(y.shape)}; expected one label per sample ({len(x)},)")
    if y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y)))):
        raise TinyTrainError(f"{name}: labels must be whole numbers (found {y.dtype})")
    classes = d.output_size
    bad = (y < 0) | (y >= classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise TinyTrainError(f"{name}: label {i} is {y[i].item()}: the model has {classes} classes (0..{classes - 1})"
                             f" ({int(bad.sum())} labels out of range)")
    return flat, y.astype(np.int64)


def load_for_device(path, description, *, labels_required: bool = True):
    """Reads and checks a sample file for the device described; see check_samples."""
    path = Path(path)
    x, y = read_samples(path)
    return check_samples(str(path), x, y, description, labels_required=labels_required)
