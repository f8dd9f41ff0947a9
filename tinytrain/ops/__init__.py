"""The op registry: one unit per op type (see tinytrain/ops/base.py for what a unit holds).

To add an op: write tinytrain/ops/<op>.py defining `UNIT` (or `UNITS` for a family), add its
module name to MODULES below, add its C kernels under firmware/kernels/<op>/, and its tests
(docs/architecture.md, "How to add an op").
"""
from __future__ import annotations

import importlib

from ..errors import UnsupportedError
from .base import OpUnit

# The registry: one line per op module.
MODULES = (
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "add",
    "pool2d",
    "mean",
    "relu",
    "reshape",
    "softmax",
    "pad",
    "quantize",
    "pointwise_depthwise_conv2d",
    "hard_swish",
    "sub",
    "mul",
    "maximum",
    "logistic",
    "tanh",
    "leaky_relu",
    "prelu",
    "concatenation",
    "transpose_conv",
    "resize",
    "strided_slice",
    "cast",
)

_UNITS: dict[str, OpUnit] = {}


def _load() -> dict[str, OpUnit]:
    if not _UNITS:
        for name in MODULES:
            module = importlib.import_module(f"{__name__}.{name}")
            for u in getattr(module, "UNITS", None) or [module.UNIT]:
                if u.type in _UNITS:
                    raise RuntimeError(f"op type {u.type!r} registered twice ({name})")
                _UNITS[u.type] = u
    return _UNITS


def unit(op_type: str) -> OpUnit:
    """The unit of an op type; UnsupportedError for an unknown one."""
    units = _load()
    if op_type not in units:
        raise UnsupportedError(op_type, f"op type {op_type!r}")
    return units[op_type]


def tflite_unit(kind: str) -> OpUnit | None:
    """The unit that imports TFLite builtin operator `kind` (its `tflite_ops`), or None."""
    for u in _load().values():
        if kind in u.tflite_ops:
            return u
    return None


def keras_layer_unit(kind: str) -> OpUnit | None:
    """The unit that imports Keras layer class `kind` (its `keras_layers`), or None."""
    return next((u for u in _load().values() if kind in u.keras_layers), None)


def keras_activation_unit(name: str) -> OpUnit | None:
    """The unit whose op is Keras activation `name` (its `keras_activations`), or None."""
    return next((u for u in _load().values() if name in u.keras_activations), None)


def keras_op_unit(name: str) -> OpUnit | None:
    """The unit that imports Keras 3 operation class `name` (its `keras_ops`: `x + 3.0` in a
    functional model is a keras.ops Add node, not a layer), or None."""
    return next((u for u in _load().values() if name in u.keras_ops), None)


def op_types() -> tuple[str, ...]:
    return tuple(_load())


def units() -> list[OpUnit]:
    return list(_load().values())


__all__ = ["OpUnit", "unit", "op_types", "units", "tflite_unit", "keras_layer_unit", "keras_activation_unit",
           "keras_op_unit", "MODULES"]
