"""The tinytrain serial protocol's constants and fixed layouts: the ONE place they are defined.

`tinytrain/protocol.py` (the host) reads them from here, and `firmware/runtime/tt_proto.h`
(the device) is generated from them by `python scripts/gen_protocol.py`; a test fails when
the committed header is not what this table generates. docs/protocol.md documents them.

Everything here is plain data: names, numbers, and field lists of (name, type) where the
type is one of the little-endian scalar types in SCALARS (`uN` unsigned, `iN` signed, `f32`
IEEE binary32) or `bytesN` (N raw bytes).
"""
from __future__ import annotations

import struct

VERSION = 2

# Frame header: version u8, type u8, seq u16, length u16 (payload bytes); then the payload,
# then CRC-32 (zlib) of header and payload, all little-endian.
HEADER_FIELDS = (("version", "u8"), ("type", "u8"), ("seq", "u16"), ("length", "u16"))
CRC_BYTES = 4
SEQ_NONE = 0xFFFF            # the seq of an error about a frame whose own seq is unreadable
TAG_BYTES = 16               # HMAC-SHA-256 truncated to 128 bits (RFC 2104 / RFC 4868)
NONCE_BYTES = 16
KEY_BYTES = 32
KEY_ID_BYTES = 8

# Device build defaults (a board may build with other values within the limits).
DEFAULT_MAX_PAYLOAD = 1024   # largest request payload the device accepts
MIN_MAX_PAYLOAD = 256
DEFAULT_MAX_REPLY = 256      # largest reply payload it sends (the reply ring holds these)
MIN_MAX_REPLY = 128
DEFAULT_REPLY_RING = 4

# Message types: (name, code, access, what it does). access says who may send it:
#   open   always, before any authentication (HELLO, AUTH)
#   read   reads: open or closed per build (HELLO reports which)
#   write  changes the device's state: only inside an authenticated session
# A reply has type code | REPLY.
MESSAGES = (
    ("HELLO", 0x01, "open", "start a session at any seq; get limits and an auth challenge"),
    ("DESCRIBE", 0x02, "read", "a page of the device's description (TLV records)"),
    ("INFER", 0x03, "read", "run the forward pass on a sample"),
    ("TRAIN", 0x04, "write", "train (or evaluate) on 1..255 samples"),
    ("INPUT_WRITE", 0x05, "read", "write part of the input, for samples larger than a frame"),
    ("OUTPUT_READ", 0x06, "read", "read part of the output"),
    ("SET_MODE", 0x07, "write", "train or eval mode for TRAIN requests without the eval flag"),
    ("GET_STATS", 0x08, "read", "training statistics"),
    ("RESET_STATS", 0x09, "write", "zero the statistics (not the step count)"),
    ("SET_HPARAMS", 0x0A, "write", "learning rate, momentum, weight decay"),
    ("GET_HPARAMS", 0x0B, "read", "the hyper-parameters"),
    ("PARAM_INFO", 0x0C, "read", "name, size, offset and dtype of a trainable parameter"),
    ("WEIGHTS_READ", 0x0D, "read", "bytes of the concatenated trainable parameters"),
    ("WEIGHTS_CRC", 0x0E, "read", "size and CRC-32 of the trainable parameters"),
    ("WEIGHTS_WRITE", 0x0F, "write", "stage bytes of a weights transaction"),
    ("WEIGHTS_SAVE", 0x10, "write", "save the parameters to the older A/B slot"),
    ("WEIGHTS_LOAD", 0x11, "write", "load the newest valid saved parameters"),
    ("LINK_STATS", 0x12, "read", "the device's link counters"),
    ("ECHO", 0x13, "read", "the same bytes back"),
    ("AUTH", 0x14, "open", "answer HELLO's challenge: start an authenticated session"),
    ("WEIGHTS_BEGIN", 0x15, "write", "open a weights transaction (size, CRC, model hash)"),
    ("WEIGHTS_COMMIT", 0x16, "write", "check the staged weights and switch to them at once"),
    ("WEIGHTS_ABORT", 0x17, "write", "drop a weights transaction"),
)
REPLY = 0x80
BUSY = 0xFE          # device -> host: the request with this seq was accepted and is computing
ERROR = 0xFF

# Error codes: (name, code, meaning). `drop` errors are about a frame the device did not
# execute (never stored, never resent); the others answer an executed request.
ERRORS = (
    ("CRC", 1, "drop", "frame CRC mismatch"),
    ("TOO_LONG", 2, "drop", "frame longer than the maximum, or a payload over max_payload"),
    ("MALFORMED", 3, "drop", "bad COBS, truncated, or a length field that disagrees"),
    ("VERSION", 4, "drop", "unsupported protocol version (detail: the device's)"),
    ("UNKNOWN_TYPE", 5, "exec", "no such request type"),
    ("BAD_LENGTH", 6, "exec", "payload length wrong for this request"),
    ("SEQ", 7, "drop", "out-of-sequence request, not executed (detail: the expected seq)"),
    ("RANGE", 8, "exec", "offset, index, label or value out of range (detail: which sample)"),
    ("NOT_TRAINABLE", 9, "exec", "inference-only firmware"),
    ("NV", 10, "exec", "non-volatile store missing, too small or failing"),
    ("NO_SAVED", 11, "exec", "no valid saved weights for this model"),
    ("WEIGHTS_CRC", 12, "exec", "staged weights do not match the transaction's CRC"),
    ("AUTH", 13, "exec", "needs an authenticated session, or AUTH's proof was wrong"),
    ("BAD_TAG", 14, "drop", "in a session: the request's tag is wrong (not executed)"),
    ("NONFINITE", 15, "exec", "a NaN or infinite sample or weight (detail: which)"),
    ("MODEL", 16, "exec", "the weights are for another model (hash mismatch)"),
    ("STATE", 17, "exec", "not now: no open transaction, a transaction open, or out of order"),
)

# HELLO flags.
HELLO_FLAGS = (
    ("AUTH_WRITES", 0x01, "state-changing requests need an authenticated session"),
    ("AUTH_READS", 0x02, "reads need one too (a closed build)"),
    ("AUTH_READY", 0x04, "a challenge was issued: AUTH may be sent now"),
)

# DESCRIBE capability bits.
CAPABILITIES = (
    ("INFER", 0x01, "forward pass"),
    ("TRAIN", 0x02, "training step"),
    ("NV_STORE", 0x04, "non-volatile store for A/B saves"),
    ("HPARAMS", 0x08, "hyper-parameters can be set"),
    ("AUTH", 0x10, "writes need an authenticated session"),
    ("AUTH_READS", 0x20, "reads need one too"),
    ("SPARE_RAM", 0x40, "a RAM copy of the trainable state: RAM staging, exact step rollback"),
)

MODES = (("TRAIN", 0), ("EVAL", 1))

# Data type codes: (name, code, numpy dtype, IR dtype name). tt_types.h's TT_DTYPE_x agree
# (a test checks it).
DTYPES = (
    ("S8", 1, "<i1", "int8"),
    ("S32", 2, "<i4", "int32"),
    ("F32", 3, "<f4", "float32"),
    ("F16", 4, "<f2", "float16"),
)

# TRAIN request flags and per-sample result flags.
TRAIN_FLAGS = (("EVAL", 0x01, "forward only: count, do not learn (whatever the device's mode)"),)
RESULT_FLAGS = (
    ("CORRECT", 0x01, "the prediction equals the label"),
    ("EVAL", 0x02, "the sample was only evaluated"),
    ("ROLLED_BACK", 0x04, "the step's loss or update was not finite: the parameters are as before"),
)

# WEIGHTS_BEGIN / COMMIT: where the transaction is staged.
STAGING = (("RAM", 0), ("NV", 1))

# Fixed layouts (request or reply payloads). Each is a tuple of (field, type); "_" fields
# are padding, sent as zero.
LAYOUTS = {
    "HELLO_REPLY": (("version", "u16"), ("max_payload", "u16"), ("max_reply", "u16"),
                    ("reply_ring", "u16"), ("flags", "u16"), ("_", "u16"),
                    ("challenge", f"bytes{NONCE_BYTES}"), ("key_id", f"bytes{KEY_ID_BYTES}")),
    "AUTH_REQUEST": (("host_nonce", f"bytes{NONCE_BYTES}"), ("proof", f"bytes{TAG_BYTES}")),
    "AUTH_REPLY": (("proof", f"bytes{TAG_BYTES}"),),
    "DESCRIBE_REQUEST": (("offset", "u16"),),
    "DESCRIBE_REPLY": (("total", "u16"), ("offset", "u16")),            # then the page's bytes
    "TRAIN_REQUEST": (("flags", "u8"), ("count", "u8")),                # then count records
    "TRAIN_RECORD": (("label", "i32"),),                                # then the sample
    "TRAIN_REPLY": (("steps", "u32"), ("work", "u32"), ("count", "u8"), ("mode", "u8"),
                    ("_", "u16")),                                      # then count results
    "TRAIN_RESULT": (("loss", "f32"), ("predicted", "u32"), ("flags", "u8")),
    "INFER_REPLY": (("predicted", "u32"), ("work", "u32"), ("output_bytes", "u32")),
    "RANGE_REQUEST": (("offset", "u32"), ("count", "u16")),             # OUTPUT_READ, WEIGHTS_READ
    "OFFSET": (("offset", "u32"),),                                     # INPUT_WRITE, WEIGHTS_WRITE
    "GET_STATS_REPLY": (("steps", "u32"), ("mode", "u8"), ("_", "u8"), ("_", "u16"),
                        ("train_samples", "u32"), ("train_correct", "u32"),
                        ("train_loss_sum", "f32"), ("eval_samples", "u32"),
                        ("eval_correct", "u32"), ("infer_count", "u32"),
                        ("rolled_back", "u32"), ("refused_nonfinite", "u32")),
    "HPARAMS": (("lr", "f32"), ("momentum", "f32"), ("weight_decay", "f32")),
    "PARAM_INFO_REPLY": (("bytes", "u32"), ("offset", "u32"), ("dtype", "u8"),
                         ("name_length", "u8")),                        # then the name
    "WEIGHTS_CRC_REPLY": (("total", "u32"), ("crc", "u32")),
    "WEIGHTS_BEGIN_REQUEST": (("total", "u32"), ("crc", "u32"), ("model_hash", "bytes16")),
    "WEIGHTS_BEGIN_REPLY": (("staging", "u8"), ("_", "u8"), ("_", "u16")),
    "WEIGHTS_WRITE_REPLY": (("staged", "u32"),),
    "WEIGHTS_COMMIT_REPLY": (("total", "u32"), ("crc", "u32"), ("staging", "u8"), ("_", "u8"),
                             ("_", "u16"), ("generation", "u32")),
    "STORE_INFO": (("generation", "u32"), ("steps", "u32"), ("data_bytes", "u32"),
                   ("data_crc", "u32"), ("slot", "u8"), ("_", "u8"), ("_", "u16")),
    "LINK_STATS_REPLY": (("frames_ok", "u32"), ("crc_errors", "u32"), ("too_long", "u32"),
                         ("malformed", "u32"), ("bad_version", "u32"), ("seq_errors", "u32"),
                         ("duplicates", "u32"), ("executed", "u32"), ("unknown_type", "u32"),
                         ("auth_refused", "u32"), ("bad_tags", "u32"),
                         ("auth_failures", "u32")),
    "ERROR": (("code", "u8"), ("request_type", "u8"), ("detail", "u16")),
}

# DESCRIBE: the description is a list of TLV records (u8 tag, u8 length, value), read in
# pages. A host skips tags it does not know, so fields can be added without a new version;
# a tag never changes meaning. Types: the scalars, "str" (ASCII), "bytes", "u32s" (a list).
DESCRIBE_TAGS = (
    (1, "protocol_version", "u16"),
    (2, "max_payload", "u16"),
    (3, "capabilities", "u32"),
    (4, "model_hash", "str"),
    (5, "model_name", "str"),
    (6, "board", "str"),
    (7, "firmware_version", "str"),
    (8, "core", "str"),
    (9, "work_unit", "str"),
    (10, "input_dtype", "u8"),
    (11, "output_dtype", "u8"),
    (12, "input_shape", "u32s"),
    (13, "output_shape", "u32s"),
    (14, "input_scale", "f32"),
    (15, "input_zero_point", "i32"),
    (16, "output_scale", "f32"),
    (17, "output_zero_point", "i32"),
    (18, "arena_bytes", "u32"),
    (19, "flash_data_bytes", "u32"),
    (20, "sram_bytes", "u32"),
    (21, "flash_bytes", "u32"),
    (22, "nv_bytes", "u32"),
    (23, "link_ram_bytes", "u32"),
    (24, "trainable_bytes", "u32"),
    (25, "num_params", "u32"),
    (26, "steps", "u32"),
    (27, "loaded_generation", "u32"),
    (28, "mode", "u8"),
    (29, "simd", "str"),
    (30, "reply_ring", "u16"),
    (31, "max_reply", "u16"),
    (32, "key_id", "bytes"),
    (33, "spare_bytes", "u32"),
    # training builds: the optimizer as it is now, and what the update keeps
    # (trainable_bytes = param_bytes + momentum_bytes + update_extra_bytes)
    (34, "lr", "f32"),
    (35, "momentum", "f32"),
    (36, "weight_decay", "f32"),
    (37, "update_mode", "str"),          # nearest, shadow, residual, stochastic; float (float32 models)
    (38, "update_extra_bytes", "u32"),         # SRAM the update mode keeps (shadows, residuals, PRNG state)
    (39, "momentum_bytes", "u32"),
    (40, "param_bytes", "u32"),          # the trainable parameters alone
)

# The non-volatile store (firmware/runtime/tt_weights_store.c): two A/B slots of weights,
# then a small device record (the nonce counter) at the end.
NV_SLOT_MAGIC = 0x32575454          # "TTW2" little-endian
NV_SLOT_HEADER_BYTES = 48
NV_HASH_BYTES = 16
NV_RECORD_MAGIC = 0x52445454        # "TTDR"
NV_RECORD_BYTES = 16                # one copy: magic, counter, reserved, CRC
NV_RECORD_AREA = 64                 # the last 64 bytes of the store: two copies


SCALARS = {"u8": "B", "u16": "H", "u32": "I", "i32": "i", "f32": "f"}


def field_size(kind: str) -> int:
    if kind.startswith("bytes"):
        return int(kind[5:])
    return struct.calcsize("<" + SCALARS[kind])


def struct_format(layout: str) -> str:
    """The struct module format of a fixed layout (padding as 'x')."""
    out = "<"
    for name, kind in LAYOUTS[layout]:
        if kind.startswith("bytes"):
            out += f"{field_size(kind)}{'x' if name == '_' else 's'}"
        else:
            out += f"{field_size(kind)}x" if name == "_" else SCALARS[kind]
    return out


def layout_offsets(layout: str) -> list[tuple[str, str, int]]:
    out, off = [], 0
    for name, kind in LAYOUTS[layout]:
        out.append((name, kind, off))
        off += field_size(kind)
    return out


def layout_size(layout: str) -> int:
    return sum(field_size(k) for _, k in LAYOUTS[layout])


# ---- the C header ---------------------------------------------------------------------------

def _define(name: str, value: str, comment: str = "") -> str:
    line = f"#define {name:<34s} {value}"
    return f"{line:<58s} /* {comment} */" if comment else line


def c_header() -> str:
    """The text of firmware/runtime/tt_proto.h."""
    L = ["/* tt_proto.h - GENERATED by scripts/gen_protocol.py from tinytrain/protocol_spec.py.",
         " * Do not edit: change the table there and regenerate (a test checks this file is current).",
         " *",
         " * The tinytrain serial protocol (docs/protocol.md). A frame on the wire is COBS(body)",
         " * followed by one 0x00 delimiter; body = header (version u8, type u8, seq u16, length u16),",
         " * payload (length bytes; in an authenticated session its last TT_PROTO_TAG_BYTES are the",
         " * HMAC tag), CRC-32 (zlib) of header and payload. All fields little-endian. */",
         "#ifndef TT_PROTO_H", "#define TT_PROTO_H", "", "#include <stdint.h>", "",
         _define("TT_PROTO_VERSION", f"{VERSION}u"),
         _define("TT_PROTO_HEADER_BYTES", "6u"),
         _define("TT_PROTO_CRC_BYTES", f"{CRC_BYTES}u"),
         _define("TT_PROTO_TAG_BYTES", f"{TAG_BYTES}u", "HMAC-SHA-256, first 128 bits"),
         _define("TT_PROTO_NONCE_BYTES", f"{NONCE_BYTES}u"),
         _define("TT_PROTO_KEY_BYTES", f"{KEY_BYTES}u"),
         _define("TT_PROTO_KEY_ID_BYTES", f"{KEY_ID_BYTES}u"),
         _define("TT_PROTO_SEQ_NONE", f"0x{SEQ_NONE:04X}u"),
         "",
         "/* Limits a build may change (-D...), within the checked bounds. */",
         "#ifndef TT_PROTO_MAX_PAYLOAD",
         _define("TT_PROTO_MAX_PAYLOAD", f"{DEFAULT_MAX_PAYLOAD}u", "largest request payload"),
         "#endif",
         "#ifndef TT_PROTO_MAX_REPLY",
         _define("TT_PROTO_MAX_REPLY", f"{DEFAULT_MAX_REPLY}u", "largest reply payload"),
         "#endif",
         "#ifndef TT_PROTO_REPLY_RING",
         _define("TT_PROTO_REPLY_RING", f"{DEFAULT_REPLY_RING}u", "replies kept for retransmission"),
         "#endif",
         f"#if TT_PROTO_MAX_PAYLOAD < {MIN_MAX_PAYLOAD} || TT_PROTO_MAX_PAYLOAD > 65535",
         f'#error "TT_PROTO_MAX_PAYLOAD must be in [{MIN_MAX_PAYLOAD}, 65535]"',
         "#endif",
         f"#if TT_PROTO_MAX_REPLY < {MIN_MAX_REPLY} || TT_PROTO_MAX_REPLY > TT_PROTO_MAX_PAYLOAD",
         f'#error "TT_PROTO_MAX_REPLY must be in [{MIN_MAX_REPLY}, TT_PROTO_MAX_PAYLOAD]"',
         "#endif",
         "#if TT_PROTO_REPLY_RING < 1 || TT_PROTO_REPLY_RING > 64",
         '#error "TT_PROTO_REPLY_RING must be in [1, 64]"',
         "#endif",
         "#define TT_PROTO_MAX_BODY   (TT_PROTO_HEADER_BYTES + TT_PROTO_MAX_PAYLOAD + TT_PROTO_CRC_BYTES)",
         "#define TT_PROTO_REPLY_BODY (TT_PROTO_HEADER_BYTES + TT_PROTO_MAX_REPLY + TT_PROTO_CRC_BYTES)",
         "/* COBS adds one code byte, plus one per 254 bytes. */",
         "#define TT_PROTO_ENCODED(n) ((n) + (n) / 254u + 1u)",
         "#define TT_PROTO_MAX_ENCODED TT_PROTO_ENCODED(TT_PROTO_MAX_BODY)",
         "", "/* Message types (a reply is type | TT_MSG_REPLY). */"]
    for name, code, access, what in MESSAGES:
        L.append(_define(f"TT_MSG_{name}", f"0x{code:02X}u", f"{access}: {what}"))
    L += [_define("TT_MSG_REPLY", f"0x{REPLY:02X}u"),
          _define("TT_MSG_BUSY", f"0x{BUSY:02X}u", "device -> host: accepted, computing"),
          _define("TT_MSG_ERROR", f"0x{ERROR:02X}u"), "",
          "/* Which requests change state (need an authenticated session) and which are reads. */",
          "#define TT_MSG_IS_WRITE(t) ( \\"]
    writes = [n for n, _, a, _ in MESSAGES if a == "write"]
    L += [f"    (t) == TT_MSG_{n} ||{' ' * (20 - len(n))}\\" for n in writes[:-1]]
    L += [f"    (t) == TT_MSG_{writes[-1]})", "#define TT_MSG_IS_OPEN(t) ("
          + " || ".join(f"(t) == TT_MSG_{n}" for n, _, a, _ in MESSAGES if a == "open") + ")",
          "", "/* Error codes (first payload byte of an ERROR frame). */"]
    for name, code, kind, what in ERRORS:
        L.append(_define(f"TT_ERR_{name}", f"{code}u", f"{kind}: {what}"))
    L += ["", "/* HELLO flags. */"]
    L += [_define(f"TT_HELLO_{n}", f"0x{v:02X}u", w) for n, v, w in HELLO_FLAGS]
    L += ["", "/* DESCRIBE capability bits. */"]
    L += [_define(f"TT_CAP_{n}", f"0x{v:02X}u", w) for n, v, w in CAPABILITIES]
    L += ["", "/* Modes, data types, TRAIN flags, result flags, staging. */"]
    L += [_define(f"TT_MODE_{n}", f"{v}u") for n, v in MODES]
    L += ["#ifndef TT_DTYPE_S8   /* tt_types.h defines the same values */"]
    L += [_define(f"TT_DTYPE_{n}", f"{v}") for n, v, _, _ in DTYPES]
    L += ["#endif"]
    L += [_define(f"TT_TRAIN_{n}", f"0x{v:02X}u", w) for n, v, w in TRAIN_FLAGS]
    L += [_define(f"TT_RESULT_{n}", f"0x{v:02X}u", w) for n, v, w in RESULT_FLAGS]
    L += [_define(f"TT_STAGING_{n}", f"{v}u") for n, v in STAGING]
    L += ["", "/* Fixed payload layouts: byte offsets (_OFF_) and sizes (_BYTES). */"]
    for layout in LAYOUTS:
        for name, kind, off in layout_offsets(layout):
            if name != "_":
                L.append(_define(f"TT_{layout}_OFF_{name.upper()}", f"{off}u", kind))
        L.append(_define(f"TT_{layout}_BYTES", f"{layout_size(layout)}u"))
    L += ["", "/* DESCRIBE TLV tags. */"]
    L += [_define(f"TT_DESC_{name.upper()}", f"{tag}u", kind) for tag, name, kind in DESCRIBE_TAGS]
    L += ["", "/* The non-volatile store's layout. */",
          _define("TT_NV_SLOT_MAGIC", f"0x{NV_SLOT_MAGIC:08X}u", '"TTW2"'),
          _define("TT_NV_SLOT_HEADER_BYTES", f"{NV_SLOT_HEADER_BYTES}u"),
          _define("TT_NV_HASH_BYTES", f"{NV_HASH_BYTES}u"),
          _define("TT_NV_RECORD_MAGIC", f"0x{NV_RECORD_MAGIC:08X}u", '"TTDR"'),
          _define("TT_NV_RECORD_BYTES", f"{NV_RECORD_BYTES}u"),
          _define("TT_NV_RECORD_AREA", f"{NV_RECORD_AREA}u"),
          "", "/* Little-endian field access, independent of the CPU's byte order and alignment. */",
          "static inline void tt_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }",
          "static inline void tt_put_u32(uint8_t *p, uint32_t v)",
          "{",
          "    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);",
          "}",
          "static inline uint16_t tt_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }",
          "static inline uint32_t tt_get_u32(const uint8_t *p)",
          "{",
          "    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);",
          "}",
          "", "#endif /* TT_PROTO_H */", ""]
    return "\n".join(L)
