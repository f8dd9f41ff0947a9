"""Nothing half-done: a weights push is a transaction, staged (in RAM, or in the inactive NV
slot on a board without room), checked (size, CRC, model hash, finite values) and committed
at once, or not at all. Cut the link at every chunk boundary, or the power at every NV write
of a push: the device always runs exactly the old or the new weights."""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from faulty_proxy import FaultyProxy  # noqa: E402
from harness import HostDevice, build_host_device, device_binary, link_build_dir  # noqa: E402,F401

from tinytrain import protocol as P  # noqa: E402
from tinytrain.link import DeviceError, Link, LinkError  # noqa: E402

CHUNK = 32          # bytes per WEIGHTS_WRITE: the test model's 272 bytes are 9 chunks
N_CHUNKS = 9


@pytest.fixture(scope="module")
def nv_staging_binary(link_build_dir):
    """A device without the RAM copy: pushes stage in the inactive NV slot."""
    return build_host_device(link_build_dir, defines=["-DTT_LINK_SPARE=0"], name="link_device_nospare")


@pytest.fixture(params=["ram", "nv"])
def device(request, device_binary, nv_staging_binary, tmp_path):
    binary = device_binary if request.param == "ram" else nv_staging_binary
    dev = HostDevice(binary, tmp_path / "nv.bin").start()
    dev.staging = P.STAGING_RAM if request.param == "ram" else P.STAGING_NV
    yield dev
    dev.stop()


def weight_sets(seed=0):
    rng = np.random.default_rng(seed)
    old = rng.normal(0, 0.5, 68).astype("<f4").tobytes()
    new = rng.normal(0, 0.5, 68).astype("<f4").tobytes()
    return old, new


def device_crc(url) -> int:
    with Link.open(url) as link:
        return link.weights_crc()[1]


def cut_push(dev, blob, cut_after):
    """Pushes blob through a proxy that cuts the link after the given frame."""
    proxy = FaultyProxy(("127.0.0.1", dev.port), rate=0.0, cut_after=cut_after)
    try:
        with Link.open(proxy.url, timeout=0.05, retries=1) as link:
            with pytest.raises(LinkError):
                link.write_weights(blob, chunk=CHUNK)
    finally:
        proxy.stop()


def test_a_push_cut_at_every_chunk_boundary_leaves_old_or_new(device):
    old, new = weight_sets()
    with Link.open(device.url) as link:
        info = link.write_weights(old)
        assert info.staging == device.staging
        if device.staging == P.STAGING_RAM:
            link.save_weights()                   # both variants: the old weights are saved
    cuts = [(P.WEIGHTS_BEGIN, 1)] + [(P.WEIGHTS_WRITE, k) for k in range(1, N_CHUNKS + 1)]
    for cut in cuts:
        cut_push(device, new, cut)
        assert device_crc(device.url) == zlib.crc32(old), f"cut after {cut}"
        device.restart()                          # and after a power cycle
        assert device_crc(device.url) == zlib.crc32(old), f"cut after {cut}, restarted"
    cut_push(device, new, (P.WEIGHTS_COMMIT, 1))   # COMMIT arrived, its reply was lost
    assert device_crc(device.url) == zlib.crc32(new)
    with Link.open(device.url) as link:            # the whole push, uncut
        assert link.write_weights(old, chunk=CHUNK).crc == zlib.crc32(old)
        assert link.read_weights() == old


def test_power_lost_at_every_nv_write_of_a_staged_push(nv_staging_binary, tmp_path):
    """NV staging: BEGIN invalidates the inactive slot (1 write), each chunk is a write, COMMIT
    writes the header (the switch). Power is lost in the middle of each write in turn."""
    old, new = weight_sets(1)
    nv = tmp_path / "nv.bin"
    dev = HostDevice(nv_staging_binary, nv)
    try:
        dev.start()
        with Link.open(dev.url) as link:
            assert link.write_weights(old).generation == 1
        writes = 1 + 1 + N_CHUNKS + 1                # nonce counter at HELLO, begin, chunks, header
        for crash in range(2, writes + 1):
            dev.restart(TT_NV_CRASH_AT=crash)
            with Link.open(dev.url, timeout=0.2, retries=1) as link:
                with pytest.raises(LinkError):
                    link.write_weights(new, chunk=CHUNK)
            assert dev.wait_exit() == 3
            dev.restart()
            assert device_crc(dev.url) == zlib.crc32(old), f"power lost in NV write {crash}"
        dev.restart()
        with Link.open(dev.url) as link:
            info = link.write_weights(new, chunk=CHUNK)
            assert info.staging == P.STAGING_NV and info.generation > 1
        dev.restart()
        assert device_crc(dev.url) == zlib.crc32(new)       # committed to NV: it boots with them
    finally:
        dev.stop()


def begin(link, blob, crc=None):
    hash16 = link.description.model_hash.encode().ljust(16, b"\0")
    return link.request(P.WEIGHTS_BEGIN, struct.pack("<II", len(blob), zlib.crc32(blob) if crc is None else crc)
                        + hash16)


def write(link, off, data):
    return link.request(P.WEIGHTS_WRITE, struct.pack("<I", off) + data)


def expect(code, fn, *args):
    with pytest.raises(DeviceError) as e:
        fn(*args)
    assert e.value.code == code, e.value
    return e.value


def test_the_transaction_rules(device):
    old, new = weight_sets(2)
    with Link.open(device.url) as link:
        link.write_weights(old)
        expect(P.ERR_STATE, link.request, P.WEIGHTS_COMMIT)               # nothing open
        begin(link, new)
        expect(P.ERR_STATE, write, link, 32, new[32:64])                   # out of order
        write(link, 0, new[:200])
        expect(P.ERR_STATE, link.request, P.WEIGHTS_COMMIT)               # not all bytes staged
        expect(P.ERR_RANGE, write, link, 200, new[200:] + b"xxxx")          # past the end
        expect(P.ERR_STATE, link.train, np.zeros(16, np.int8), 1)         # no training meanwhile
        write(link, 200, new[200:])
        assert link.read_weights() == old                                  # staged, not running
        assert link.request(P.WEIGHTS_COMMIT)
        assert link.read_weights() == new

        begin(link, old, crc=zlib.crc32(old) ^ 1)                          # a wrong CRC
        write(link, 0, old)
        expect(P.ERR_WEIGHTS_CRC, link.request, P.WEIGHTS_COMMIT)
        assert link.read_weights() == new
        expect(P.ERR_STATE, link.request, P.WEIGHTS_COMMIT)               # and the transaction is gone

        bad = bytearray(old)
        bad[256:260] = struct.pack("<f", float("nan"))                     # a NaN in fc.bias
        begin(link, bytes(bad))
        write(link, 0, bytes(bad))
        e = expect(P.ERR_NONFINITE, link.request, P.WEIGHTS_COMMIT)
        assert e.detail == 1                                               # parameter 1: fc.bias
        assert link.read_weights() == new

        begin(link, old)
        write(link, 0, old[:64])
        link.abort_weights()
        expect(P.ERR_STATE, write, link, 64, old[64:])
        begin(link, old)                                                   # a new session drops it too
        write(link, 0, old[:64])
    with Link.open(device.url) as link:
        expect(P.ERR_STATE, write, link, 64, old[64:])
        assert link.read_weights() == new
        link.train(np.zeros(16, np.int8), 1)                               # training works again


def test_a_commit_resets_the_optimizer_state(device_binary, tmp_path):
    """Momentum left from before a push must not move the new weights: a step after the
    push equals the same step on a fresh device."""
    _, new = weight_sets(3)
    x = np.random.default_rng(0).integers(-128, 128, (6, 16)).astype(np.int8)
    after = []
    for warm in (True, False):
        dev = HostDevice(device_binary, tmp_path / f"nv{warm}.bin").start()
        try:
            with Link.open(dev.url) as link:
                link.set_hparams(0.1, 0.9, 0.0)
                if warm:
                    link.train_many(x, [0, 1, 2, 3, 0, 1])        # momentum builds up
                link.write_weights(new)
                link.train(x[0], 0)
                after.append(link.read_weights())
        finally:
            dev.stop()
    assert after[0] == after[1]
