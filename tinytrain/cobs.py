"""Consistent Overhead Byte Stuffing, byte for byte the same as firmware/runtime/tt_cobs.c.

The encoded form holds no 0x00 byte, so 0x00 delimits frames on the serial line and a
receiver resynchronises at the next delimiter after any corruption.
"""
from __future__ import annotations


class CobsError(ValueError):
    """The bytes are not a valid COBS encoding."""


def max_encoded_size(n: int) -> int:
    """Worst-case encoded size of n bytes (without the delimiter)."""
    return n + n // 254 + 1


def encode(data: bytes) -> bytes:
    """Encodes data (no delimiter appended)."""
    out = bytearray(b"\x00")
    code_at = 0
    code = 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Decodes one frame (without its delimiter); raises CobsError when invalid."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0:
            raise CobsError("zero byte inside a COBS frame")
        end = i + code - 1
        if end > n:
            raise CobsError("COBS code runs past the end of the frame")
        block = data[i:end]
        if 0 in block:
            raise CobsError("zero byte inside a COBS frame")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
