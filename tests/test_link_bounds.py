"""Every length is bounded against the buffer it fills: a payload one byte over the limit,
replies asked to be longer than a reply can be, offsets past the end, on a device built with
AddressSanitizer and UBSan (any out-of-bounds access or undefined behaviour kills it)."""
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
from harness import TEST_KEY, HostDevice, build_host_device, link_build_dir  # noqa: E402,F401
from rawport import RawPort, counters  # noqa: E402

from tinytrain import cobs, protocol as P  # noqa: E402

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


@pytest.fixture(scope="module", params=[1024, 4096])
def sanitized(request, link_build_dir):
    """The link device with ASan + UBSan, at the default and at a larger payload limit."""
    max_payload = request.param
    binary = build_host_device(link_build_dir, defines=[f"-DTT_PROTO_MAX_PAYLOAD={max_payload}u"],
                               name=f"link_device_asan_{max_payload}", flags=SANITIZE)
    return binary, max_payload


@pytest.fixture
def raw_device(sanitized, tmp_path):
    binary, max_payload = sanitized
    dev = HostDevice(binary, tmp_path / "nv.bin").start(ASAN_OPTIONS="detect_leaks=0")
    raw = RawPort(dev.port)
    yield dev, raw, max_payload
    raw.close()
    dev.stop()


def alive(dev) -> bool:
    return dev.proc.poll() is None


def test_a_payload_over_the_limit_is_dropped_not_executed(raw_device):
    dev, raw, max_payload = raw_device
    max_reply = raw.hello(1)[2]
    assert raw.hello(1)[1] == max_payload
    # One byte too many, in a frame that still fits the receive buffer (COBS adds little
    # where zeros are frequent): the length field is checked against the limit.
    raw.frame(P.ECHO, 2, b"\x07\x00" * (max_payload // 2) + b"\x07")
    assert raw.error(raw.reply()) == (P.ERR_TOO_LONG, P.ECHO, 0)
    raw.frame(P.ECHO, 2, bytes([7]) * (max_payload + 1))          # and where it does not
    assert raw.error(raw.reply()) == (P.ERR_TOO_LONG, 0, 0)
    raw.frame(P.ECHO, 2, b"\x01\x00" * (max_payload // 2))          # the largest request: its
    assert raw.error(raw.reply()) == (P.ERR_BAD_LENGTH, P.ECHO, 0)  # echo cannot fit a reply
    raw.frame(P.ECHO, 3, bytes(range(256)) * (max_reply // 256) + bytes(max_reply % 256))
    assert len(raw.reply().payload) == max_reply                    # the largest echo that fits
    c = counters(raw, 4)
    assert (c["too_long"], c["executed"]) == (2, 3)   # HELLO (repeated: from the ring), 2 ECHOs
    assert alive(dev)


def test_stored_replies_survive_hostile_requests(raw_device):
    """The reply ring holds what it sent, whatever came after (a repeat gets the same bytes)."""
    dev, raw, max_payload = raw_device
    raw.auth(TEST_KEY, 10)
    max_reply = raw.hello_reply[2]
    raw.frame(P.GET_STATS, 12)
    raw.reply()
    hostile = [
        (P.ECHO, bytes(max_payload - P.TAG_BYTES)),                 # longest echo a session can ask
        (P.DESCRIBE, struct.pack("<H", 0xFFFF)),                    # a page past the end
        (P.DESCRIBE, struct.pack("<H", 1)),
        (P.WEIGHTS_READ, struct.pack("<IH", 0, 0xFFFF)),            # longer than a reply
        (P.WEIGHTS_READ, struct.pack("<IH", 0xFFFFFFF0, 16)),       # offset past the end
        (P.OUTPUT_READ, struct.pack("<IH", 0, 0xFFFF)),
        (P.PARAM_INFO, struct.pack("<I", 0xFFFFFFFF)),
        (P.INPUT_WRITE, struct.pack("<I", 0xFFFFFFFF) + bytes(8)),
        (P.INPUT_WRITE, struct.pack("<I", 8) + bytes(9)),
        (P.TRAIN, struct.pack("<BB", 0, 255) + bytes(20 * 10)),     # count disagrees with the bytes
        (P.TRAIN, struct.pack("<BB", 0, 0)),
        (P.WEIGHTS_BEGIN, bytes(23)),
        (P.SET_HPARAMS, bytes(11)),
        (P.AUTH, bytes(31)),
    ]
    for i, (t, payload) in enumerate(hostile):
        raw.frame(t, 13 + i, payload)
        f = raw.reply()
        assert f.seq == 13 + i and len(f.payload) <= max_reply, (t, f)
    raw.send(raw.sent[2])                           # GET_STATS again, seq 12: out of the ring now
    assert raw.error(raw.reply())[0] == P.ERR_SEQ   # not executed again
    raw.frame(P.GET_STATS, 13 + len(hostile))
    assert struct.unpack_from("<I", raw.reply().payload)[0] == 0
    assert alive(dev)


def test_a_repeat_is_answered_with_the_stored_bytes(raw_device):
    dev, raw, max_payload = raw_device
    raw.auth(TEST_KEY, 100)
    raw.frame(P.GET_HPARAMS, 102)
    first = raw.raw_reply()
    raw.frame(P.ECHO, 103, bytes(max_payload - P.TAG_BYTES))        # refused: too long to echo
    assert raw.error(raw.reply())[0] == P.ERR_BAD_LENGTH
    raw.send(raw.sent[-2])                                          # GET_HPARAMS repeated
    assert raw.raw_reply() == first
    assert alive(dev)


def test_garbage_at_every_length_leaves_the_device_alive(raw_device):
    dev, raw, max_payload = raw_device
    raw.hello(7)
    for n in (0, 1, 9, 10, 11, 255, 256, max_payload + 9, max_payload + 10, max_payload + 11,
              max_payload + 14, max_payload + 20, 3 * max_payload):
        raw.send(cobs.encode(bytes((i * 37 + 1) % 256 for i in range(n))) + b"\x00")
        assert raw.reply().type == P.ERROR
    raw.frame(P.ECHO, 8, b"ok")
    assert raw.reply().payload == b"ok"
    assert alive(dev)
