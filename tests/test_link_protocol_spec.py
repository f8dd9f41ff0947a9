"""One source of truth for the protocol: tinytrain/protocol_spec.py. The device's tt_proto.h
is generated from it (and must be current), the C runtime's dtype codes agree with it, and
docs/protocol.md documents every code it defines, with a worked example that matches."""
import hashlib
import hmac
import re
import struct
import subprocess
import sys

from conftest import ROOT
from tinytrain import cobs, protocol as P, protocol_spec as S

DOC = (ROOT / "docs" / "protocol.md").read_text()


def test_the_committed_header_is_what_the_table_generates():
    header = ROOT / "firmware" / "runtime" / "tt_proto.h"
    assert header.read_text() == S.c_header(), "stale: run python scripts/gen_protocol.py"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protocol.py"), "--check"])
    assert proc.returncode == 0


def test_the_header_defines_every_code_of_the_table():
    text = S.c_header()
    for name, code, _, _ in S.MESSAGES:
        assert re.search(rf"#define TT_MSG_{name}\s+0x{code:02X}u", text), name
    for name, code, _, _ in S.ERRORS:
        assert re.search(rf"#define TT_ERR_{name}\s+{code}u", text), name
    for layout in S.LAYOUTS:
        assert re.search(rf"#define TT_{layout}_BYTES\s+{S.layout_size(layout)}u", text), layout
        assert P.LAYOUT[layout].size == S.layout_size(layout)


def test_the_c_runtime_uses_the_same_dtype_codes():
    types_h = (ROOT / "firmware" / "include" / "tt_types.h").read_text()
    for name, code, _, _ in S.DTYPES:
        assert re.search(rf"#define TT_DTYPE_{name}\s+{code}\b", types_h), name


def test_the_c_and_python_layouts_agree_byte_for_byte(tmp_path):
    """Each fixed layout's offsets, as the compiled header gives them."""
    lines = ['#include <stdio.h>', '#include "tt_proto.h"', "int main(void) {"]
    for layout in S.LAYOUTS:
        for name, _, off in S.layout_offsets(layout):
            if name != "_":
                lines.append(f'    printf("{layout}.{name} %u\\n", (unsigned)TT_{layout}_OFF_{name.upper()});')
    lines.append("    return 0; }")
    src = tmp_path / "offsets.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "offsets"
    subprocess.run(["gcc", "-std=c99", f"-I{ROOT / 'firmware' / 'runtime'}", str(src), "-o", str(exe)], check=True)
    got = dict(line.split() for line in subprocess.run([str(exe)], capture_output=True, text=True).stdout.splitlines())
    for layout in S.LAYOUTS:
        fmt = P.LAYOUT[layout]
        for name, kind, off in S.layout_offsets(layout):
            if name != "_":
                assert int(got[f"{layout}.{name}"]) == off
        assert fmt.size == sum(S.field_size(k) for _, k in S.LAYOUTS[layout])


def test_the_document_lists_every_code():
    assert f"version {S.VERSION}" in DOC.splitlines()[0]
    for name, code, access, _ in S.MESSAGES:
        assert re.search(rf"\| 0x{code:02X} \| {name} \| {access} \|", DOC), name
    for name, code, kind, _ in S.ERRORS:
        assert re.search(rf"\| {code} \| {name} \| {kind} \|", DOC), name
    for tag, name, _ in S.DESCRIBE_TAGS:
        assert re.search(rf"\| {tag} \| {name} \|", DOC), name
    for name, value, _ in S.CAPABILITIES:
        assert f"{value} " in DOC
    for name, value, _ in S.HELLO_FLAGS:
        assert f"{value} `{name}`" in DOC, name


def _doc_bytes(label: str) -> bytes:
    m = re.search(re.escape(label) + r"[^`]*`([0-9a-f .|]+)`", DOC)
    text = m.group(1).replace("|", " ")
    out = []
    for tok in text.split():
        if tok == "..":
            continue
        out.append(int(tok, 16))
    return bytes(out)


def test_the_worked_example_is_right():
    key = bytes(range(32))
    challenge, nonce = bytes(range(0x40, 0x50)), bytes(range(0x80, 0x90))
    mac = lambda k, *parts: hmac.new(k, b"".join(parts), hashlib.sha256).digest()  # noqa: E731
    assert _doc_bytes("- key id:") == mac(key, b"tinytrain v2 key id")[:8]
    assert _doc_bytes("HELLO with seq `0x1234`: body") == P.build_body(P.HELLO, 0x1234)
    assert _doc_bytes("on the wire") == P.encode_frame(P.HELLO, 0x1234)
    assert _doc_bytes("host proof") == mac(key, b"tinytrain v2 host", challenge, nonce)[:16]
    assert _doc_bytes("device proof") == mac(key, b"tinytrain v2 device", challenge, nonce)[:16]
    session = mac(key, b"tinytrain v2 session", challenge, nonce)
    assert _doc_bytes("session key") == session
    payload = struct.pack("<BBi", 0, 1, 3) + bytes(range(16))
    body = P.build_body(P.TRAIN, 0x1236, payload,
                        tagger=lambda head: mac(session, b"\x00", struct.pack("<I", 1), head)[:16])
    doc = DOC[DOC.index("with label 3: body"):]
    tokens = re.search(r"`([0-9a-f .|]+)`", doc).group(1).replace("|", " ").split()
    cut = tokens.index("..")                      # "00 01 02 .. 0f": the sample
    want = bytes(int(t, 16) for t in tokens[:cut]) + bytes(range(3, 16))
    rest = bytes(int(t, 16) for t in tokens[cut + 2:])
    assert body == want + rest
    assert cobs.decode(cobs.encode(body)) == body
