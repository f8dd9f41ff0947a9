"""Fault tolerance: damaged, truncated, oversized, unknown and repeated frames; training
through a proxy that damages, drops and duplicates frames; interrupted weight saves."""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from faulty_proxy import FaultyProxy  # noqa: E402
from harness import TEST_KEY, HostDevice, device_binary, link_build_dir, link_device  # noqa: E402,F401
from rawport import RawPort, counters, train_payload  # noqa: E402

from tinytrain import cobs, protocol as P  # noqa: E402
from tinytrain.protocol_spec import NV_RECORD_AREA  # noqa: E402
from tinytrain.link import Link, LinkError  # noqa: E402


@pytest.fixture
def raw(link_device):
    r = RawPort(link_device.port)
    yield r
    r.close()


def weights_crc(raw, seq):
    raw.frame(P.WEIGHTS_CRC, seq)
    return raw.payload(raw.reply())


def test_bad_frames_are_dropped_counted_and_answered(raw):
    raw.frame(P.HELLO, 100)
    assert raw.reply().type == P.HELLO | P.REPLY
    crc0 = weights_crc(raw, 101)
    write = P.encode_frame(P.WEIGHTS_WRITE, 102, struct.pack("<I", 0) + b"\x55" * 64)

    corrupted = bytearray(write)
    corrupted[20] = corrupted[20] % 255 + 1              # still non-zero: one damaged frame
    raw.send(bytes(corrupted))
    assert raw.error(raw.reply())[0] == P.ERR_CRC
    raw.send(write[:30] + b"\x00")                        # truncated
    assert raw.error(raw.reply())[0] in (P.ERR_CRC, P.ERR_MALFORMED)
    raw.send(b"\x07" * 5000 + b"\x00")                    # longer than any frame
    assert raw.error(raw.reply())[0] == P.ERR_TOO_LONG
    raw.send(b"\x01\x01\x00")                             # too short to be a frame
    assert raw.error(raw.reply())[0] == P.ERR_MALFORMED
    raw.send(cobs.encode(P.build_body(P.WEIGHTS_WRITE, 102, b"\x00" * 8, version=9)) + b"\x00")
    assert raw.error(raw.reply()) == (P.ERR_VERSION, P.WEIGHTS_WRITE, P.VERSION)
    raw.send(b"\x00\x00\x00")                             # idle delimiters: ignored
    assert weights_crc(raw, 102) == crc0                  # nothing was written
    raw.frame(0x55, 103)                                  # unknown type: executed as an error
    assert raw.error(raw.reply()) == (P.ERR_UNKNOWN_TYPE, 0x55, 0)
    c = counters(raw, 104)
    assert (c["crc_errors"] + c["malformed"], c["too_long"], c["bad_version"]) == (3, 1, 1)
    assert c["unknown_type"] == 1 and c["executed"] == 4   # LINK_STATS counts itself after


def test_repeated_request_is_answered_not_executed(raw):
    raw.auth(TEST_KEY, 65533)
    train = raw.encode(P.TRAIN, 65535, train_payload([range(16)], [2]))
    raw.send(train)
    first = raw.raw_reply()
    assert raw.busy == [65535]                            # BUSY came before the reply
    raw.send(train)                                       # a retry: same seq, same CRC
    assert raw.raw_reply() == first
    assert raw.busy == [65535]                            # not started again
    raw.frame(P.GET_STATS, 0)                             # seq wraps around
    assert struct.unpack_from("<I", raw.reply().payload)[0] == 1   # trained once
    raw.send(train)                                       # still in the reply ring
    assert raw.raw_reply() == first
    raw.frame(P.TRAIN, 5, train_payload([bytes(16)], [2]), counter=99)   # a gap: not executed
    assert raw.error(raw.reply()) == (P.ERR_SEQ, P.TRAIN, 1)
    raw.frame(P.TRAIN, 6, train_payload([bytes(16)], [2]), counter=99)   # one notice per gap
    raw.frame(P.GET_STATS, 1)
    f = raw.reply()
    assert f.type == P.GET_STATS | P.REPLY and f.seq == 1
    assert struct.unpack_from("<I", f.payload)[0] == 1
    c = counters(raw, 2)
    assert (c["duplicates"], c["seq_errors"]) == (2, 2)


def teacher_data(n, seed):
    """A learnable task: labels from a fixed linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, 16)).astype(np.int8)
    teacher = rng.normal(size=(4, 16))
    return x, np.argmax(x.astype(np.float64) @ teacher.T, axis=1)


def run_training(url, x, y, **link_kwargs):
    with Link.open(url, **link_kwargs) as link:
        link.set_hparams(0.02, 0.9, 0.0)
        results = link.train_many(x, y)
        acc = link.evaluate(x[:64], y[:64]).accuracy
        return link, results, link.read_weights(), acc


@pytest.mark.parametrize("seed,batch,n", [(1, 1, 300), (2, 4, 1200), (3, None, 6000)])
def test_training_through_faulty_link_equals_clean_run(device_binary, tmp_path, seed, batch, n):
    """One sample per TRAIN request, a few, and as many as fit (25 here): the same."""
    x, y = teacher_data(n, seed)
    clean_dev = HostDevice(device_binary, tmp_path / "clean.bin").start()
    faulty_dev = HostDevice(device_binary, tmp_path / "faulty.bin").start()
    proxy = FaultyProxy(("127.0.0.1", faulty_dev.port), rate=0.05, seed=seed)
    try:
        _, clean, clean_w, clean_acc = run_training(clean_dev.url, x, y, timeout=0.5, batch=batch)
        link, faulty, faulty_w, faulty_acc = run_training(
            proxy.url, x, y, timeout=0.15, retries=30, first_seq=65500, batch=batch)
        # Same results step by step, same weights bit for bit.
        assert [(r.loss, r.predicted, r.steps) for r in faulty] == \
               [(r.loss, r.predicted, r.steps) for r in clean]
        assert faulty_w == clean_w and faulty_acc == clean_acc
        assert clean[-1].steps == n and clean_acc > 0.5          # it really learned

        # Every damaged frame was detected, on both sides.
        proxy.to_device.rate = proxy.to_host.rate = 0.0
        with Link.open(proxy.url, timeout=0.5) as quiet:
            dc = quiet.device_counters()
        to_dev, to_host = proxy.stats["to_device"], proxy.stats["to_host"]
        assert to_dev["frames"] > 250 and to_host["frames"] > 250
        for s in (to_dev, to_host):
            assert s["damaged"] + s["drop"] + s["duplicate"] >= 0.01 * s["frames"]
        assert to_dev["damaged"] > 0 and to_host["damaged"] > 0
        assert dc["crc_errors"] + dc["malformed"] + dc["too_long"] == to_dev["damaged"]
        assert dc["bad_tags"] == 0 and dc["auth_refused"] == 0    # damage is caught by the CRC
        assert link.counters.bad_frames == to_host["damaged"]
        assert link.counters.retransmissions > 0
    finally:
        proxy.stop()
        clean_dev.stop()
        faulty_dev.stop()


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
def test_interrupted_save_keeps_previous_weights(device_binary, tmp_path, crash_at):
    """A save is 4 NV writes (invalidate header, 2 parameter regions, header); power is
    lost in the middle of each in turn during the second save. (The first NV write of a
    boot is the nonce counter, at the first HELLO.)"""
    x, y = teacher_data(8, 3)
    dev = HostDevice(device_binary, tmp_path / "nv.bin").start(TT_NV_CRASH_AT=5 + crash_at)
    try:
        with Link.open(dev.url, timeout=0.3, retries=1) as link:
            link.train_many(x[:4], y[:4])
            saved = link.read_weights()
            assert link.save_weights().generation == 1
            link.train_many(x[4:], y[4:])
            assert link.read_weights() != saved
            with pytest.raises(LinkError):
                link.save_weights()
        assert dev.wait_exit() == 3
        dev.restart()
        with Link.open(dev.url, timeout=0.5) as link:
            assert (link.description.loaded_generation, link.description.steps) == (1, 4)
            assert link.read_weights() == saved
            assert link.save_weights().generation == 2       # the store is still usable
    finally:
        dev.stop()


def test_corrupted_slot_falls_back_to_older(link_device):
    x, y = teacher_data(4, 4)
    with Link.open(link_device.url, timeout=0.5) as link:
        w1 = link.read_weights()
        link.save_weights()
        link.train_many(x, y)
        assert link.save_weights().slot == 1
    nv = bytearray(link_device.nv_path.read_bytes())
    slot1 = (4096 - NV_RECORD_AREA) // 2                     # tt_weights_store.h's layout
    nv[slot1 + 48 + 10] ^= 0xFF                              # one bit-rotten byte in slot 1's data
    link_device.nv_path.write_bytes(bytes(nv))
    link_device.restart()
    with Link.open(link_device.url, timeout=0.5) as link:
        assert link.description.loaded_generation == 1
        assert link.read_weights() == w1
        assert zlib.crc32(w1) == link.load_weights().data_crc
