"""COBS, CRC-32 and frame layout: the Python and C implementations agree byte for byte."""
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
from harness import build_cobs_tool, link_build_dir  # noqa: E402,F401

from tinytrain import cobs, protocol as P  # noqa: E402

EDGE_CASES = [b"", b"\x00", b"\x00\x00", b"\x01", bytes(range(1, 255)), bytes(range(1, 256)),
              b"\x11" * 253, b"\x11" * 254, b"\x11" * 255, b"\x11" * 508, b"\x11" * 254 + b"\x00",
              b"\x00" + b"\x22" * 600 + b"\x00", bytes(range(256)) * 5]


@pytest.fixture(scope="module")
def cobs_tool(link_build_dir):
    return build_cobs_tool(link_build_dir)


def run(tool, *args, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), *args], input=data, capture_output=True)


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_cobs_roundtrip_has_no_zero(data):
    enc = cobs.encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= cobs.max_encoded_size(len(data))
    assert cobs.decode(enc) == data


def test_cobs_known_vectors():
    # Vectors from the COBS paper / Wikipedia.
    assert cobs.encode(b"\x00") == b"\x01\x01"
    assert cobs.encode(b"\x00\x00") == b"\x01\x01\x01"
    assert cobs.encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs.encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    assert cobs.encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x11\x22", b"\x03\x11\x00", b"\x02"])
def test_cobs_rejects_invalid(bad):
    with pytest.raises(cobs.CobsError):
        cobs.decode(bad)


@pytest.mark.parametrize("data", EDGE_CASES)
def test_c_and_python_cobs_agree(cobs_tool, data):
    c_enc = run(cobs_tool, "enc", data=data)
    assert c_enc.returncode == 0
    assert c_enc.stdout == cobs.encode(data)                  # C encodes as Python does
    c_dec = run(cobs_tool, "dec", data=cobs.encode(data))
    assert c_dec.returncode == 0 and c_dec.stdout == data     # C decodes Python's encoding


@pytest.mark.parametrize("bad", [b"\x05\x11\x22", b"\x03\x11\x00\x01", b"\x00\x01"])
def test_c_cobs_rejects_invalid(cobs_tool, bad):
    assert run(cobs_tool, "dec", data=bad).returncode == 1


@pytest.mark.parametrize("data", [b"", b"123456789", bytes(range(256)) * 17])
def test_c_crc_is_zlib_crc32(cobs_tool, data):
    assert int(run(cobs_tool, "crc", data=data).stdout, 16) == zlib.crc32(data)


def test_c_frame_parses_in_python(cobs_tool):
    payload = bytes(range(256)) + b"\x00\x00"
    out = run(cobs_tool, "frame", str(P.TRAIN), "65534", data=payload).stdout
    f = P.parse_frame(out)
    assert (f.version, f.type, f.seq, f.payload) == (P.VERSION, P.TRAIN, 65534, payload)
    assert P.encode_frame(P.TRAIN, 65534, payload) == out + b"\x00"


def test_parse_frame_detects_damage():
    good = P.encode_frame(P.ECHO, 7, b"abc")[:-1]
    assert P.parse_frame(good).payload == b"abc"
    flipped = bytearray(good)
    flipped[5] ^= 0x40
    with pytest.raises(P.FrameError) as e:
        P.parse_frame(bytes(flipped))
    assert e.value.kind in ("crc", "malformed")
    with pytest.raises(P.FrameError) as e:
        P.parse_frame(good[:-2])
    assert e.value.kind in ("crc", "malformed")
    wrong_len = cobs.encode(P.HEADER.pack(1, P.ECHO, 7, 5) + b"abc")
    wrong_len = cobs.encode(cobs.decode(wrong_len) + zlib.crc32(cobs.decode(wrong_len)).to_bytes(4, "little"))
    with pytest.raises(P.FrameError) as e:
        P.parse_frame(wrong_len)
    assert e.value.kind == "malformed"


def test_splitter_cuts_frames_and_bounds_length():
    s = P.FrameSplitter(max_encoded=10)
    assert s.feed(b"\x00abc") == []
    assert s.feed(b"de\x00\x00xy\x00") == [b"abcde", b"xy"]
    out = s.feed(b"z" * 25 + b"\x00ok\x00")
    assert isinstance(out[0], P.FrameError) and out[0].kind == "too_long"
    assert out[1] == b"ok"
