"""Wire format of the tinytrain serial protocol (docs/protocol.md, firmware/runtime/tt_proto.h).

A frame on the wire is COBS(body) + b"\\x00"; body = header (version u8, type u8, seq u16,
length u16) + payload + CRC-32 (zlib) of header and payload, all little-endian.
This module only builds and parses frames and payloads; tinytrain.link moves them.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from . import cobs

VERSION = 1
HEADER = struct.Struct("<BBHH")
HEADER_BYTES = HEADER.size
CRC_BYTES = 4
SEQ_NONE = 0xFFFF
# Largest payload any device may announce; a device's own limit comes with HELLO.
MAX_PAYLOAD_LIMIT = 65535

# Request types (reply = type | REPLY).
HELLO = 0x01
DESCRIBE = 0x02
INFER = 0x03
TRAIN = 0x04
INPUT_WRITE = 0x05
OUTPUT_READ = 0x06
SET_MODE = 0x07
GET_STATS = 0x08
RESET_STATS = 0x09
SET_HPARAMS = 0x0A
GET_HPARAMS = 0x0B
PARAM_INFO = 0x0C
WEIGHTS_READ = 0x0D
WEIGHTS_CRC = 0x0E
WEIGHTS_WRITE = 0x0F
WEIGHTS_SAVE = 0x10
WEIGHTS_LOAD = 0x11
LINK_STATS = 0x12
ECHO = 0x13
REPLY = 0x80
BUSY = 0xFE      # device -> host: the request with this seq was accepted and is computing
ERROR = 0xFF
REQUEST_NAMES = {
    HELLO: "hello", DESCRIBE: "describe", INFER: "infer", TRAIN: "train",
    INPUT_WRITE: "input_write", OUTPUT_READ: "output_read", SET_MODE: "set_mode",
    GET_STATS: "get_stats", RESET_STATS: "reset_stats", SET_HPARAMS: "set_hparams",
    GET_HPARAMS: "get_hparams", PARAM_INFO: "param_info", WEIGHTS_READ: "weights_read",
    WEIGHTS_CRC: "weights_crc", WEIGHTS_WRITE: "weights_write", WEIGHTS_SAVE: "weights_save",
    WEIGHTS_LOAD: "weights_load", LINK_STATS: "link_stats", ECHO: "echo",
}

# Error codes.
ERR_CRC = 1
ERR_TOO_LONG = 2
ERR_MALFORMED = 3
ERR_VERSION = 4
ERR_UNKNOWN_TYPE = 5
ERR_BAD_LENGTH = 6
ERR_SEQ = 7
ERR_RANGE = 8
ERR_NOT_TRAINABLE = 9
ERR_NV = 10
ERR_NO_SAVED = 11
ERR_WEIGHTS_CRC = 12
ERROR_NAMES = {
    ERR_CRC: "crc", ERR_TOO_LONG: "too_long", ERR_MALFORMED: "malformed",
    ERR_VERSION: "version", ERR_UNKNOWN_TYPE: "unknown_type", ERR_BAD_LENGTH: "bad_length",
    ERR_SEQ: "seq", ERR_RANGE: "range", ERR_NOT_TRAINABLE: "not_trainable", ERR_NV: "nv",
    ERR_NO_SAVED: "no_saved", ERR_WEIGHTS_CRC: "weights_crc",
}
# Errors about a frame the device dropped without executing it.
DROP_ERRORS = (ERR_CRC, ERR_TOO_LONG, ERR_MALFORMED, ERR_VERSION, ERR_SEQ)

CAP_INFER, CAP_TRAIN, CAP_NV_STORE, CAP_HPARAMS = 0x01, 0x02, 0x04, 0x08
MODE_TRAIN, MODE_EVAL = 0, 1
DTYPE_S8, DTYPE_S32, DTYPE_F32, DTYPE_F16 = 1, 2, 3, 4
DTYPE_NUMPY = {DTYPE_S8: "<i1", DTYPE_S32: "<i4", DTYPE_F32: "<f4", DTYPE_F16: "<f2"}


@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    seq: int
    payload: bytes
    crc: int


class FrameError(ValueError):
    """A received frame that must be dropped; .kind is 'malformed', 'crc' or 'too_long'."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def build_body(type_: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    head = HEADER.pack(version, type_, seq & 0xFFFF, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


def encode_frame(type_: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes to write for one frame, delimiter included."""
    return cobs.encode(build_body(type_, seq, payload)) + b"\x00"


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
    return Frame(version, type_, seq, bytes(body[HEADER_BYTES:-4]), crc)


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
