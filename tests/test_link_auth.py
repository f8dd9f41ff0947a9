"""Who may change a device: the device's SHA-256 / HMAC against hashlib on the standard
vectors, challenge-response sessions, tags on every frame of a session, unauthenticated
writes refused and counted, replayed and forged frames refused, nonces that never repeat,
reads open or closed per build."""
import hashlib
import hmac
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from faulty_proxy import FaultyProxy  # noqa: E402
from harness import (TEST_KEY, HostDevice, build_cobs_tool, build_host_device, device_binary,  # noqa: E402,F401
                     link_build_dir, link_device)
from rawport import RawPort, counters, train_payload  # noqa: E402

from tinytrain import keystore, protocol as P  # noqa: E402
from tinytrain.errors import TinyTrainError  # noqa: E402
from tinytrain.link import DeviceError, Link, LinkError  # noqa: E402

# ---- SHA-256 and HMAC-SHA-256 on the device, against hashlib / hmac ---------------------------

FIPS_180 = [  # FIPS 180-2 appendix B and the NIST example values
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
     b"mnopqrstnopqrstu", "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]
RFC_4231 = [  # test cases 1-7 (case 5: the tag truncated to 128 bits)
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.fixture(scope="module")
def tool(link_build_dir):
    return build_cobs_tool(link_build_dir)


def c_digest(tool, *args, data: bytes) -> str:
    proc = subprocess.run([str(tool), *args], input=data, capture_output=True, check=True)
    return proc.stdout.decode().strip()


@pytest.mark.parametrize("msg,want", FIPS_180, ids=["abc", "empty", "448-bit", "896-bit", "million-a"])
def test_sha256_fips_180_vectors(tool, msg, want):
    assert hashlib.sha256(msg).hexdigest() == want
    assert c_digest(tool, "sha256", data=msg) == want
    assert c_digest(tool, "sha256", "7", data=msg) == want        # fed in odd pieces


@pytest.mark.parametrize("key,msg,want", RFC_4231, ids=[f"case{i}" for i in range(1, 8)])
def test_hmac_sha256_rfc_4231_vectors(tool, key, msg, want):
    assert hmac.new(key, msg, hashlib.sha256).hexdigest()[:len(want)] == want
    assert c_digest(tool, "hmac", key.hex(), data=msg)[:len(want)] == want
    assert c_digest(tool, "hmac", key.hex(), "3", data=msg)[:len(want)] == want


@given(st.binary(max_size=300), st.binary(min_size=0, max_size=100), st.integers(1, 70))
@settings(max_examples=60, deadline=None)
def test_sha256_and_hmac_equal_hashlib_on_random_data(tool, data, key, chunk):
    assert c_digest(tool, "sha256", str(chunk), data=data) == hashlib.sha256(data).hexdigest()
    assert c_digest(tool, "hmac", key.hex(), str(chunk), data=data) == hmac.new(key, data, hashlib.sha256).hexdigest()


def test_constant_time_compare_finds_a_difference_anywhere(tool):
    a = bytes(range(16))
    assert c_digest(tool, "eq", "16", data=a + a) == "1"
    for i in range(16):
        for bit in (0x01, 0x80):
            b = bytearray(a)
            b[i] ^= bit
            assert c_digest(tool, "eq", "16", data=a + bytes(b)) == "0", (i, bit)


def test_constant_time_compare_has_no_early_exit():
    """The comparison's loop always runs over every byte (no data-dependent branch)."""
    src = (Path(__file__).resolve().parents[1] / "firmware" / "runtime" / "tt_sha256.c").read_text()
    body = src[src.index("int tt_ct_equal"):src.index("void tt_wipe")]
    assert "diff |=" in body and "return 0" not in body and "break" not in body


# ---- sessions --------------------------------------------------------------------------------------

def test_unauthenticated_writes_are_refused_and_counted(link_device):
    with Link.open(link_device.url) as link:
        before = link.read_weights()
    with Link.open(link_device.url, authenticate=False) as anon:
        assert not anon.authenticated
        d = anon.describe()                               # reads are open on this build
        assert d.model_name == "link_test_linear" and anon.read_weights() == before
        x = np.zeros(16, np.int8)
        attempts = [
            lambda: anon.train(x, 1),
            lambda: anon.set_hparams(1e30),
            lambda: anon.set_mode("eval"),
            anon.reset_stats,
            lambda: anon.write_weights(bytes(len(before))),
            lambda: anon.request(P.WEIGHTS_WRITE, struct.pack("<I", 0) + bytes(64)),
            anon.save_weights,
            anon.load_weights,
        ]
        for attempt in attempts:
            with pytest.raises(DeviceError) as e:
                attempt()
            assert e.value.code == P.ERR_AUTH and "authenticated session" in str(e.value)
        assert anon.device_counters()["auth_refused"] == len(attempts)
    with Link.open(link_device.url) as link:
        assert link.read_weights() == before
        st = link.stats()
        assert (st.steps, st.mode) == (0, P.MODE_TRAIN)
        assert link.get_hparams()[0] != pytest.approx(1e30)


def test_a_host_without_the_key_is_told_what_to_do(link_device, tmp_path, monkeypatch):
    monkeypatch.setenv(keystore.ENV, str(tmp_path / "empty-store"))
    with Link.open(link_device.url) as link:
        assert not link.authenticated
        with pytest.raises(DeviceError, match=f"no key for device {link.key_id.hex()}.*tinytrain key add"):
            link.train(np.zeros(16, np.int8), 0)


def test_a_wrong_key_is_refused(link_device):
    wrong = bytes(32)
    with pytest.raises(LinkError, match="not device"):
        Link.open(link_device.url, key=wrong)
    raw = RawPort(link_device.port)
    try:
        challenge = raw.hello(10)[5]
        raw.frame(P.AUTH, 11, bytes(16) + hmac.new(wrong, b"tinytrain v2 host" + challenge + bytes(16),
                                                   hashlib.sha256).digest()[:16])
        assert raw.error(raw.reply())[:2] == (P.ERR_AUTH, P.AUTH)
        # The challenge was used up: even the right proof for it is refused now.
        proof = hmac.new(TEST_KEY, b"tinytrain v2 host" + challenge + bytes(16), hashlib.sha256).digest()[:16]
        raw.frame(P.AUTH, 12, bytes(16) + proof)
        assert raw.error(raw.reply())[:2] == (P.ERR_AUTH, P.AUTH)
        raw.frame(P.TRAIN, 13, train_payload([bytes(16)], [1]))
        assert raw.error(raw.reply())[:2] == (P.ERR_AUTH, P.TRAIN)
        c = counters(raw, 14)
        assert (c["auth_failures"], c["auth_refused"]) == (2, 1)
    finally:
        raw.close()


def test_a_recorded_session_cannot_be_replayed(link_device):
    """Everything an eavesdropper recorded, sent again byte for byte, changes nothing."""
    rec = RawPort(link_device.port)
    try:
        rec.auth(TEST_KEY, 500)
        rec.frame(P.TRAIN, 502, train_payload([bytes(range(16))], [1]))
        assert rec.reply().type == P.TRAIN | P.REPLY
        rec.frame(P.WEIGHTS_SAVE, 503)
        assert rec.reply().type == P.WEIGHTS_SAVE | P.REPLY
        recorded = list(rec.sent)
    finally:
        rec.close()
    with Link.open(link_device.url) as link:
        steps, crc = link.stats().steps, link.weights_crc()
        assert steps == 1
    replay = RawPort(link_device.port)
    try:
        for frame in recorded:
            replay.send(frame)
        replies = [replay.reply() for _ in recorded]
        # HELLO answers (with a new challenge), AUTH fails, TRAIN and SAVE are refused.
        assert replies[0].type == P.HELLO | P.REPLY
        assert [replay.error(f)[0] for f in replies[1:]] == [P.ERR_AUTH] * 3
    finally:
        replay.close()
    with Link.open(link_device.url) as link:
        assert (link.stats().steps, link.weights_crc()) == (steps, crc)
        assert link.description.loaded_generation == 0      # the replayed save did nothing


def test_in_a_session_a_forged_or_stale_tag_is_dropped_and_takes_no_seq(link_device):
    raw = RawPort(link_device.port)
    try:
        raw.auth(TEST_KEY, 0)
        raw.frame(P.TRAIN, 2, train_payload([bytes(16)], [1]))                  # counter 1
        assert raw.reply().type == P.TRAIN | P.REPLY
        raw.frame(P.TRAIN, 3, train_payload([bytes(16)], [2]), counter=1)      # a stale counter
        assert raw.error(raw.reply()) == (P.ERR_BAD_TAG, P.TRAIN, 0)
        key, raw.session_key = raw.session_key, bytes(32)                      # a forger's key
        raw.frame(P.SET_HPARAMS, 3, struct.pack("<fff", 1e30, 0, 0), counter=2)
        assert raw.error(raw.reply()) == (P.ERR_BAD_TAG, P.SET_HPARAMS, 0)
        raw.frame(P.RESET_STATS, 3, tagged=False)                               # no tag at all
        assert raw.error(raw.reply()) == (P.ERR_BAD_TAG, P.RESET_STATS, 0)
        raw.session_key = key
        raw.frame(P.GET_STATS, 3, counter=2)                                    # seq 3 is still free
        raw.counter = 2
        f = raw.reply()
        assert f.type == P.GET_STATS | P.REPLY and struct.unpack_from("<I", f.payload)[0] == 1
        c = counters(raw, 4)
        assert c["bad_tags"] == 3 and c["seq_errors"] == 0
        raw.frame(P.GET_HPARAMS, 5)
        assert struct.unpack_from("<f", raw.reply().payload)[0] != pytest.approx(1e30)
    finally:
        raw.close()


def test_replies_are_authenticated_too(device_binary, tmp_path):
    """A proxy that alters frames and fixes their CRC (only a tag can tell): the device drops
    the altered requests, the host the altered replies, and training equals a clean run."""
    rng = np.random.default_rng(3)
    x, y = rng.integers(-128, 128, (400, 16)).astype(np.int8), rng.integers(0, 4, 400)
    runs = []
    for forged in (False, True):
        dev = HostDevice(device_binary, tmp_path / f"nv{forged}.bin").start()
        proxy = FaultyProxy(("127.0.0.1", dev.port), rate=0.08 if forged else 0.0, seed=4, faults=("forge",))
        try:
            with Link.open(proxy.url, timeout=0.15, retries=30, batch=2) as link:
                link.set_hparams(0.05, 0.5, 0.0)
                results = link.train_many(x, y)
                proxy.to_device.rate = proxy.to_host.rate = 0.0
                runs.append(([(r.loss, r.predicted, r.steps) for r in results], link.read_weights(),
                             link.device_counters(), link.counters, dict(proxy.stats)))
        finally:
            proxy.stop()
            dev.stop()
    (clean, clean_w, *_), (forged, forged_w, dc, hc, stats) = runs
    assert forged == clean and forged_w == clean_w
    assert stats["to_device"]["forge"] > 5 and stats["to_host"]["forge"] > 5
    # Every forged request in sequence was caught by its tag (the others, repeats of requests
    # already executed, by their sequence number); the CRC never saw anything wrong.
    assert 0 < dc["bad_tags"] <= stats["to_device"]["forge"] and dc["crc_errors"] == 0
    assert 0 < hc.bad_tags <= stats["to_host"]["forge"] and hc.crc_errors == 0


def test_challenges_never_repeat_across_reboots(device_binary, tmp_path):
    """No TRNG (as on QEMU): the nonce counter persisted in NV makes every challenge new."""
    dev = HostDevice(device_binary, tmp_path / "nv.bin")
    seen = []
    try:
        for _ in range(4):
            dev.restart(TT_NO_ENTROPY=1)
            raw = RawPort(dev.port)
            try:
                for seq in range(3):
                    flags, challenge = raw.hello(seq)[4:6]
                    assert flags & P.HELLO_AUTH_READY
                    seen.append(challenge)
                raw.auth(TEST_KEY, 10)                    # and they work
            finally:
                raw.close()
    finally:
        dev.stop()
    assert len(set(seen)) == len(seen) == 12


def test_without_a_nonce_source_writes_stay_locked(device_binary):
    dev = HostDevice(device_binary, nv_path=None).start(TT_NO_ENTROPY=1)
    try:
        with Link.open(dev.url) as link:
            assert not link.hello_flags & P.HELLO_AUTH_READY and not link.authenticated
            assert link.describe().model_name == "link_test_linear"
            with pytest.raises(DeviceError) as e:
                link.set_mode("eval")
            assert e.value.code == P.ERR_AUTH
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def closed_binary(link_build_dir):
    return build_host_device(link_build_dir, defines=["-DTT_AUTH_READS=1"], name="link_device_closed")


def test_a_closed_build_answers_reads_only_in_a_session(closed_binary, tmp_path):
    dev = HostDevice(closed_binary, tmp_path / "nv.bin").start()
    try:
        with Link.open(dev.url, authenticate=False) as anon:
            assert anon.hello_flags & P.HELLO_AUTH_READS
            for read in (anon.describe, anon.read_weights, lambda: anon.echo(b"x"), anon.stats):
                with pytest.raises(DeviceError) as e:
                    read()
                assert e.value.code == P.ERR_AUTH
        with Link.open(dev.url) as link:
            d = link.describe()
            assert d.capabilities & P.CAP_AUTH_READS and link.echo(b"x") == b"x"
    finally:
        dev.stop()


def test_the_device_checks_the_model_hash_of_a_weights_write(link_device):
    with Link.open(link_device.url) as link:
        blob = link.read_weights()
        import zlib
        for bad in (b"0000000000000000", b"1122334455667789"):
            with pytest.raises(DeviceError) as e:
                link.request(P.WEIGHTS_BEGIN, struct.pack("<II", len(blob), zlib.crc32(blob)) + bad)
            assert e.value.code == P.ERR_MODEL
        with pytest.raises(DeviceError) as e:             # nothing was opened
            link.request(P.WEIGHTS_WRITE, struct.pack("<I", 0) + blob[:16])
        assert e.value.code == P.ERR_STATE


def test_keys_are_stored_owner_only_and_named_by_id(tmp_path, monkeypatch):
    monkeypatch.setenv(keystore.ENV, str(tmp_path / "store"))
    project = tmp_path / "proj"
    project.mkdir()
    kid = keystore.provision_project(project)
    key = keystore.read_project_key(project)
    assert keystore.key_id(key) == kid and keystore.lookup(kid) == key
    for path in (project / keystore.PROJECT_KEY_FILE, project / "src" / keystore.KEY_HEADER,
                 tmp_path / "store" / f"{kid.hex()}.key"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (tmp_path / "store").stat().st_mode & 0o777 == 0o700
    again = tmp_path / "proj2"
    again.mkdir()
    assert keystore.provision_project(again, previous=project) == kid       # a rebuild keeps it
    other = tmp_path / "proj3"
    other.mkdir()
    assert keystore.provision_project(other) != kid                          # a new project: a new key
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / keystore.PROJECT_KEY_FILE).write_text("nothex")
    with pytest.raises(TinyTrainError, match="not a tinytrain device key"):
        keystore.read_project_key(tmp_path / "bad")
