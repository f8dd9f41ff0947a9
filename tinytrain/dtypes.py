"""The one table of data types: IR name -> bytes, numpy type, C type, wire/param code.

Every module that needs a size, a numpy or C type, or the code a parameter's dtype has on
the serial link reads it here (firmware/include/tt_types.h defines the same codes; a test
checks they agree).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str          # IR name
    nbytes: int        # bytes per element (0 for packed bits)
    numpy: type
    ctype: str
    code: int          # TT_DTYPE_* (0: not a parameter type)
    c_suffix: str      # kernel name suffix: tt_<op>_<suffix>


DTYPES: dict[str, DType] = {d.name: d for d in (
    DType("int8", 1, np.int8, "int8_t", 1, "s8"),
    DType("int32", 4, np.int32, "int32_t", 2, "s32"),
    DType("float32", 4, np.float32, "float", 3, "f32"),
    DType("float16", 2, np.float16, "uint16_t", 4, "f16"),
)}
BY_CODE = {d.code: d for d in DTYPES.values()}


def dtype(name: str) -> DType:
    return DTYPES[name]


def nbytes(name: str, count: int) -> int:
    """Bytes of `count` elements of dtype `name`; "bits" are packed 8 per byte."""
    if name == "bits":
        return (count + 7) // 8
    return count * DTYPES[name].nbytes
