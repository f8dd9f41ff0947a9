"""Wire format of the tinytrain serial protocol (docs/protocol.md).

A frame on the wire is COBS(body) + b"\\x00"; body = header (version u8, type u8, seq u16,
length u16) + payload + CRC-32 (zlib) of header and payload, all little-endian. In an
authenticated session the payload's last TAG_BYTES are an HMAC tag (tinytrain.link).
Every constant and fixed layout comes from tinytrain/protocol_spec.py, the one table the
device's firmware/runtime/tt_proto.h is generated from. This module only builds and parses
frames and payloads; tinytrain.link moves them.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Callable

from . import cobs
from . import protocol_spec as S

VERSION = S.VERSION
HEADER = struct.Struct("<BBHH")
HEADER_BYTES = HEADER.size
CRC_BYTES = S.CRC_BYTES
TAG_BYTES = S.TAG_BYTES
NONCE_BYTES = S.NONCE_BYTES
KEY_BYTES = S.KEY_BYTES
KEY_ID_BYTES = S.KEY_ID_BYTES
SEQ_NONE = S.SEQ_NONE
# Largest payload any device may announce; a device's own limits come with HELLO.
MAX_PAYLOAD_LIMIT = 65535

# Request types (reply = type | REPLY), as module constants: HELLO, TRAIN, ...
for _name, _code, _access, _what in S.MESSAGES:
    globals()[_name] = _code
REPLY, BUSY, ERROR = S.REPLY, S.BUSY, S.ERROR
REQUEST_NAMES = {code: name.lower() for name, code, _, _ in S.MESSAGES}
ACCESS = {code: access for _, code, access, _ in S.MESSAGES}      # open / read / write

# Error codes: ERR_CRC, ERR_AUTH, ...
for _name, _code, _kind, _what in S.ERRORS:
    globals()[f"ERR_{_name}"] = _code
ERROR_NAMES = {code: name.lower() for name, code, _, _ in S.ERRORS}
# Errors about a frame the device dropped without executing it.
DROP_ERRORS = tuple(code for _, code, kind, _ in S.ERRORS if kind == "drop")

for _prefix, _table in (("HELLO_", S.HELLO_FLAGS), ("CAP_", S.CAPABILITIES), ("TRAIN_", S.TRAIN_FLAGS),
                        ("RESULT_", S.RESULT_FLAGS)):
    for _name, _value, _what in _table:
        globals()[_prefix + _name] = _value
for _name, _value in S.MODES:
    globals()[f"MODE_{_name}"] = _value
for _name, _value in S.STAGING:
    globals()[f"STAGING_{_name}"] = _value
for _name, _code, _np, _ir in S.DTYPES:
    globals()[f"DTYPE_{_name}"] = _code
DTYPE_NUMPY = {code: np for _, code, np, _ in S.DTYPES}
DTYPE_OF_IR = {ir: code for _, code, _, ir in S.DTYPES}
DTYPE_NAMES = {code: ir for _, code, _, ir in S.DTYPES}          # 1 -> "int8"
MODE_NAMES = {value: name.lower() for name, value in S.MODES}    # 0 -> "train"
CAPABILITY_NAMES = {value: name.lower() for name, value, _ in S.CAPABILITIES}

# The fixed layouts as struct.Struct objects: LAYOUT["TRAIN_RESULT"].unpack(...).
LAYOUT = {name: struct.Struct(S.struct_format(name)) for name in S.LAYOUTS}
LINK_STAT_NAMES = tuple(n for n, _ in S.LAYOUTS["LINK_STATS_REPLY"])
STATS_NAMES = tuple(n for n, _ in S.LAYOUTS["GET_STATS_REPLY"] if n != "_")


@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    seq: int
    payload: bytes
    crc: int
    body: bytes = b""          # the whole body (header, payload, CRC), for tag checks


class FrameError(ValueError):
    """A received frame that must be dropped; .kind is 'malformed', 'crc' or 'too_long'."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def build_body(type_: int, seq: int, payload: bytes = b"", version: int = VERSION,
               tagger: Callable[[bytes], bytes] | None = None) -> bytes:
    """Header + payload (+ tagger(header and payload), the length counting it) + CRC."""
    extra = TAG_BYTES if tagger else 0
    head = HEADER.pack(version, type_, seq & 0xFFFF, len(payload) + extra) + payload
    if tagger:
        head += tagger(head)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_frame(type_: int, seq: int, payload: bytes = b"",
                 tagger: Callable[[bytes], bytes] | None = None) -> bytes:
    """The bytes to write for one frame, delimiter included."""
    return cobs.encode(build_body(type_, seq, payload, tagger=tagger)) + b"\x00"


def parse_frame(encoded: bytes) -> Frame:
    """Decodes one received frame (without its delimiter); raises FrameError."""
    try:
        body = cobs.decode(encoded)
    except cobs.CobsError as e:
        raise FrameError("malformed", str(e)) from None
    if len(body) < HEADER_BYTES + CRC_BYTES:
        raise FrameError("malformed", f"{len(body)} bytes is shorter than a frame")
    crc = struct.unpack_from("<I", body, len(body) - 4)[0]
    if zlib.crc32(body[:-4]) != crc:
        raise FrameError("crc", "CRC mismatch")
    version, type_, seq, length = HEADER.unpack_from(body)
    if length + HEADER_BYTES + CRC_BYTES != len(body):
        raise FrameError("malformed", f"length field {length} disagrees with the frame")
    return Frame(version, type_, seq, bytes(body[HEADER_BYTES:-4]), crc, bytes(body))


def parse_tlv(blob: bytes) -> dict:
    """DESCRIBE's records -> {field name: value}; unknown tags are skipped (a newer device)."""
    kinds = {tag: (name, kind) for tag, name, kind in S.DESCRIBE_TAGS}
    out: dict = {}
    i = 0
    while i + 2 <= len(blob):
        tag, n = blob[i], blob[i + 1]
        value = blob[i + 2:i + 2 + n]
        i += 2 + n
        if len(value) != n:
            break
        if tag not in kinds:
            continue
        name, kind = kinds[tag]
        if kind == "str":
            out[name] = value.decode("ascii", "replace")
        elif kind == "bytes":
            out[name] = bytes(value)
        elif kind == "u32s":
            out[name] = tuple(struct.unpack(f"<{n // 4}I", value[:n - n % 4]))
        elif n == S.field_size(kind):
            out[name] = struct.unpack("<" + S.SCALARS[kind], value)[0]
    return out


class FrameSplitter:
    """Cuts a received byte stream at 0x00 delimiters; frames longer than max_encoded
    are reported as too long instead of buffered without bound."""

    def __init__(self, max_encoded: int):
        self.max_encoded = max_encoded
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > self.max_encoded:
                    self._overflow = True
                    self._buf.clear()
            if end < 0:
                return out
            if self._overflow:
                out.append(FrameError("too_long", "frame exceeds the maximum size"))
            elif self._buf:
                out.append(bytes(self._buf))
            self._buf.clear()
            self._overflow = False
            start = end + 1
