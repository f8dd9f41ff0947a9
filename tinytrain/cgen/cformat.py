"""C text of values: identifiers, float literals, array bodies."""
from __future__ import annotations

import re

import numpy as np

from ..dtypes import DTYPES

# C types of the IR dtypes (tinytrain.dtypes), and of 1-bit masks ("bits", 8 per byte).
CTYPES = {**{d.name: d.ctype for d in DTYPES.values()}, "bits": "uint8_t"}
NP_DTYPES = {**{d.name: d.numpy for d in DTYPES.values()}, "bits": np.uint8}


def c_identifier(name: str) -> str:
    """A C identifier from a tensor or layer name ("conv1/Relu:0" -> "conv1_Relu_0")."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name)
    ident = re.sub(r"_+", "_", ident).strip("_") or "t"
    return "t_" + ident if ident[0].isdigit() else ident


def c_float(value: float) -> str:
    """A float literal (with the f suffix) that round-trips the float32 value exactly."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise ValueError(f"no C literal for the non-finite float {value!r}")
    text = repr(float(v))
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def c_value(value) -> str:
    """A C initializer for a Python value: int, float (float32 literal), bool, or a C expression
    given as a `CExpr`."""
    if isinstance(value, CExpr):
        return value.text
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return c_float(value)
    raise TypeError(f"no C value for {value!r}")


class CExpr:
    """C text used as is (a pointer, a name, NULL)."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"CExpr({self.text!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CExpr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("CExpr", self.text))


NULL = CExpr("NULL")


def format_array(values: np.ndarray, per_line: int = 24) -> str:
    """The body of a C array initializer, `per_line` values per line."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.float16:         # tt_f16 arrays hold the bits
        items = [f"0x{int(v):04X}u" for v in flat.view(np.uint16)]
    elif flat.dtype.kind == "f":
        items = [c_float(v) for v in flat.astype(np.float32)]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "    " + ",\n    ".join(lines) if lines else "    0"
