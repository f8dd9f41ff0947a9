"""Every protocol message round-trips against the device under test (tests/link_device)."""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
from harness import (HostDevice, build_host_device, device_binary, link_build_dir,  # noqa: E402,F401
                     link_device)

from tinytrain import protocol as P  # noqa: E402
from tinytrain.errors import TinyTrainError  # noqa: E402
from tinytrain.link import DeviceError, Link  # noqa: E402
from tinytrain.predict import predicted_class  # noqa: E402

IN_SCALE, IN_ZP = np.float32(0.03125), -3


@pytest.fixture
def link(link_device):
    with Link.open(link_device.url, timeout=0.5) as lk:
        yield lk


def random_params(rng):
    return {"fc.weight": rng.normal(0, 0.5, 64).astype(np.float32),
            "fc.bias": rng.normal(0, 0.5, 4).astype(np.float32)}


def reference_logits(params, q):
    """The test model's forward pass in float32, in the C code's summation order."""
    w = params["fc.weight"].reshape(4, 16)
    x = (q.astype(np.int32) - IN_ZP).astype(np.float32) * IN_SCALE
    acc = params["fc.bias"].copy()
    for i in range(16):
        acc = (acc + w[:, i] * x[i]).astype(np.float32)
    return acc


def reference_train(params, vel, q, label, lr, mom, wd):
    logits = reference_logits(params, q)
    p = np.exp(logits - logits.max())
    loss = np.log(p.sum()) + logits.max() - logits[label]
    g = p / p.sum()
    g[label] -= 1
    x = (q.astype(np.int32) - IN_ZP).astype(np.float32) * IN_SCALE
    w = params["fc.weight"].reshape(4, 16)
    vel["w"] = mom * vel["w"] + np.outer(g, x) + wd * w
    vel["b"] = mom * vel["b"] + g
    params["fc.weight"] = (w - lr * vel["w"]).reshape(-1).astype(np.float32)
    params["fc.bias"] = (params["fc.bias"] - lr * vel["b"]).astype(np.float32)
    return loss, int(predicted_class(np.asarray(logits).reshape(1, -1))[0])


def test_hello_and_describe(link):
    d = link.description
    assert (d.protocol_version, d.max_payload, d.max_reply, d.reply_ring) == (P.VERSION, 1024, 256, 4)
    assert link.max_payload == 1024 and link.max_reply == 256 and link.window == 4
    assert link.authenticated and d.key_id == link.key_id.hex() and d.capabilities & P.CAP_AUTH
    assert d.simd_kind == "none" and not d.simd
    assert d.model_hash == "1122334455667788" and d.model_name == "link_test_linear"
    assert d.board == "host-socket" and d.firmware_version == "test-1" and d.work_unit == "us"
    assert d.input_shape == (1, 4, 4, 1) and d.output_shape == (1, 4)
    assert (d.input_dtype, d.output_dtype) == (P.DTYPE_S8, P.DTYPE_F32)
    assert (d.input_scale, d.input_zero_point) == (0.03125, -3)
    assert d.trainable and d.capabilities & P.CAP_NV_STORE
    assert (d.num_params, d.trainable_bytes, d.nv_bytes) == (2, 544, 4096)   # parameters + momentum
    assert d.sram_bytes == 262144 and d.link_ram_bytes > 0 and d.steps == 0
    # the optimizer and what the update keeps: float32 SGD with momentum
    assert (d.lr, d.momentum, d.weight_decay, d.update_mode) == (np.float32(0.1), 0.0, 0.0, "float")
    assert (d.param_bytes, d.momentum_bytes, d.update_extra_bytes) == (272, 272, 0)
    r = d.report()                                          # for people: names, not codes
    assert (r["input_dtype"], r["output_dtype"], r["mode"]) == ("int8", "float32", "train")
    assert r["capabilities"] == ["infer", "train", "nv_store", "hparams", "auth", "spare_ram"]
    link.set_hparams(0.25, 0.5, 0.001)
    link.set_mode("eval")
    d = link.describe()
    assert (d.lr, d.momentum, d.weight_decay) == (0.25, 0.5, np.float32(0.001))
    assert d.report()["mode"] == "eval"


def test_infer_matches_reference(link):
    rng = np.random.default_rng(1)
    params = random_params(rng)
    link.write_params(params)
    samples = rng.integers(-128, 128, (6, 16)).astype(np.int8)
    for q, r in zip(samples, link.infer_many(samples)):
        ref = reference_logits(params, q)
        np.testing.assert_array_equal(r.outputs.reshape(-1), ref)
        assert r.predicted == int(predicted_class(np.asarray(ref).reshape(1, -1))[0])
    assert link.stats().infer_count == 6


def test_pipelined_inference_of_outputs_larger_than_a_reply(link_build_dir, tmp_path):
    """100 float logits (400 bytes) do not fit one reply (256): the rest of each output is
    read with OUTPUT_READ before the next pipelined sample runs (it used to be read after,
    and got the next sample's logits)."""
    binary = build_host_device(link_build_dir, defines=["-DTT_TEST_OUTPUTS=100"], name="link_device_wide")
    dev = HostDevice(binary, tmp_path / "nv.bin").start()
    try:
        with Link.open(dev.url, timeout=0.5) as lk:
            rng = np.random.default_rng(4)
            params = {"fc.weight": rng.normal(0, 0.5, 1600).astype(np.float32),
                      "fc.bias": rng.normal(0, 0.5, 100).astype(np.float32)}
            lk.write_params(params)
            assert lk.description.output_size * 4 > lk.reply_room
            samples = rng.integers(-128, 128, (6, 16)).astype(np.int8)
            results = lk.infer_many(samples)
            w = params["fc.weight"].reshape(100, 16)
            for q, r in zip(samples, results):
                x = (q.astype(np.int32) - IN_ZP).astype(np.float32) * IN_SCALE
                ref = params["fc.bias"].copy()
                for i in range(16):
                    ref = (ref + w[:, i] * x[i]).astype(np.float32)
                np.testing.assert_array_equal(r.outputs.reshape(-1), ref)
                assert r.predicted == int(predicted_class(np.asarray(ref).reshape(1, -1))[0])
    finally:
        dev.stop()


def test_float_samples_are_quantized(link):
    rng = np.random.default_rng(2)
    params = random_params(rng)
    link.write_params(params)
    x = rng.uniform(-2, 2, 16).astype(np.float32)
    q = np.clip(np.round(x / 0.03125) - 3, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(link.infer(x).outputs.reshape(-1), reference_logits(params, q))
    with pytest.raises(TinyTrainError, match="16"):
        link.infer(np.zeros(15, np.int8))


def test_input_write_and_output_read(link):
    rng = np.random.default_rng(3)
    params = random_params(rng)
    link.write_params(params)
    q = rng.integers(-128, 128, 16).astype(np.int8)
    link.request(P.INPUT_WRITE, struct.pack("<I", 0) + q[:10].tobytes())
    link.request(P.INPUT_WRITE, struct.pack("<I", 10) + q[10:].tobytes())
    reply = link.request(P.INFER)                      # empty payload: use the written input
    ref = reference_logits(params, q)
    assert struct.unpack_from("<I", reply)[0] == int(predicted_class(np.asarray(ref).reshape(1, -1))[0])
    part = np.frombuffer(link.request(P.OUTPUT_READ, struct.pack("<IH", 4, 8)), "<f4")
    np.testing.assert_array_equal(part, ref[1:3])
    with pytest.raises(DeviceError) as e:
        link.request(P.INPUT_WRITE, struct.pack("<I", 12) + bytes(5))
    assert e.value.code == P.ERR_RANGE
    with pytest.raises(DeviceError) as e:
        link.request(P.OUTPUT_READ, struct.pack("<IH", 12, 8))
    assert e.value.code == P.ERR_RANGE


def test_train_matches_reference_and_counts(link):
    rng = np.random.default_rng(4)
    params = random_params(rng)
    link.write_params(params)
    lr, mom, wd = link.set_hparams(0.1, 0.5, 0.01)
    samples = rng.integers(-128, 128, (5, 16)).astype(np.int8)
    labels = rng.integers(0, 4, 5)
    results = link.train_many(samples, labels)
    vel = {"w": np.zeros((4, 16), np.float32), "b": np.zeros(4, np.float32)}
    for i, (q, y, r) in enumerate(zip(samples, labels, results)):
        loss, pred = reference_train(params, vel, q, int(y), np.float32(lr), np.float32(mom),
                                     np.float32(wd))
        assert r.loss == pytest.approx(loss, rel=1e-5)
        assert (r.predicted, r.correct, r.steps, r.mode) == (pred, pred == y, i + 1, P.MODE_TRAIN)
    got = link.read_params()
    for k in params:
        np.testing.assert_allclose(got[k], params[k], rtol=1e-5, atol=1e-6)
    st = link.stats()
    assert (st.steps, st.train_samples, st.train_correct) == (5, 5, sum(r.correct for r in results))
    assert st.train_loss_sum == pytest.approx(sum(r.loss for r in results), rel=1e-5)
    link.reset_stats()
    st = link.stats()
    assert (st.steps, st.train_samples, st.train_correct, st.train_loss_sum) == (5, 0, 0, 0.0)
    with pytest.raises(TinyTrainError, match="4 classes"):
        link.train(samples[0], 4)                      # label out of range: refused by the host
    with pytest.raises(DeviceError) as e:              # and by the device, naming the sample
        link.request(P.TRAIN, struct.pack("<BB", 0, 2) + struct.pack("<i", 1) + bytes(16)
                     + struct.pack("<i", 4) + bytes(16))
    assert (e.value.code, e.value.detail) == (P.ERR_RANGE, 1)
    assert link.stats().steps == 5                     # the whole request was refused


def test_eval_mode_does_not_train(link):
    rng = np.random.default_rng(5)
    link.write_params(random_params(rng))
    before = link.weights_crc()
    samples = rng.integers(-128, 128, (8, 16)).astype(np.int8)
    labels = rng.integers(0, 4, 8)
    ev = link.evaluate(samples, labels)
    assert link.weights_crc() == before
    assert ev.samples == 8 and all(np.isnan(r.loss) and r.evaluated for r in ev.results)
    st = link.stats()
    assert (st.mode, st.eval_samples, st.eval_correct, st.steps) == (P.MODE_TRAIN, 8, ev.correct, 0)
    link.set_mode("eval")                              # eval mode: TRAIN only evaluates
    assert all(r.evaluated and r.mode == P.MODE_EVAL for r in link.train_many(samples, labels))
    assert link.weights_crc() == before and link.stats().steps == 0
    link.set_mode("train")
    with pytest.raises(DeviceError):
        link.set_mode(7)


def test_hparams_roundtrip_and_range(link):
    assert link.set_hparams(0.25, 0.875, 0.5) == (0.25, 0.875, 0.5)
    assert link.get_hparams() == (0.25, 0.875, 0.5)
    for bad in [(0.1, 1.0, 0.0), (-0.1, 0.0, 0.0), (float("nan"), 0.0, 0.0), (0.1, 0.0, float("inf"))]:
        with pytest.raises(DeviceError) as e:          # the device checks, whatever the host sends
            link.request(P.SET_HPARAMS, struct.pack("<fff", *bad))
        assert e.value.code == P.ERR_RANGE
    with pytest.raises(TinyTrainError, match="not a finite"):
        link.set_hparams(float("nan"))
    assert link.get_hparams() == (0.25, 0.875, 0.5)


def test_param_info_and_weights_read_write(link):
    infos = link.param_info()
    assert [(i.name, i.bytes, i.offset, i.dtype) for i in infos] == [
        ("fc.weight", 256, 0, P.DTYPE_F32), ("fc.bias", 16, 256, P.DTYPE_F32)]
    blob = np.random.default_rng(6).normal(size=68).astype("<f4").tobytes()
    link.write_weights(blob)
    assert link.read_weights() == blob
    assert link.weights_crc() == (272, zlib.crc32(blob))
    with pytest.raises(TinyTrainError):
        link.write_weights(blob[:-4])
    with pytest.raises(DeviceError) as e:              # outside a transaction
        link.request(P.WEIGHTS_WRITE, struct.pack("<I", 0) + bytes(4))
    assert e.value.code == P.ERR_STATE
    with pytest.raises(DeviceError) as e:
        link.request(P.PARAM_INFO, struct.pack("<I", 2))
    assert e.value.code == P.ERR_RANGE
    assert link.read_weights() == blob


def test_save_load_alternates_slots_and_boot_loads_newest(link_device):
    rng = np.random.default_rng(7)
    samples = rng.integers(-128, 128, (4, 16)).astype(np.int8)
    with Link.open(link_device.url, timeout=0.5) as link:
        with pytest.raises(DeviceError) as e:
            link.load_weights()
        assert e.value.code == P.ERR_NO_SAVED
        link.write_params(random_params(rng))
        s1 = link.save_weights()
        assert (s1.generation, s1.slot, s1.steps) == (1, 0, 0)
        link.train_many(samples, [0, 1, 2, 3])
        w2 = link.read_weights()
        s2 = link.save_weights()
        assert (s2.generation, s2.slot, s2.steps, s2.data_crc) == (2, 1, 4, zlib.crc32(w2))
        link.train_many(samples, [3, 2, 1, 0])
        assert link.read_weights() != w2
        assert link.load_weights() == s2
        assert link.read_weights() == w2 and link.stats().steps == 4
        s3 = link.save_weights()
        assert (s3.generation, s3.slot) == (3, 0)
    link_device.restart()
    with Link.open(link_device.url, timeout=0.5) as link:
        d = link.description
        assert (d.loaded_generation, d.steps) == (3, 4)
        assert link.read_weights() == w2


def test_error_replies_and_the_link_goes_on(link):
    with pytest.raises(DeviceError) as e:
        link.request(0x42, b"x")
    assert e.value.code == P.ERR_UNKNOWN_TYPE
    with pytest.raises(DeviceError) as e:
        link.request(P.DESCRIBE, b"extra")
    assert e.value.code == P.ERR_BAD_LENGTH
    with pytest.raises(DeviceError) as e:
        link.request(P.INFER, bytes(15))
    assert e.value.code == P.ERR_BAD_LENGTH
    with pytest.raises(TinyTrainError):
        link.echo(bytes(link.payload_room + 1))   # refused by the host: larger than the device allows
    room = link.reply_room                        # an echo comes back in a reply
    assert link.echo(bytes(range(256))[:room]) == bytes(range(256))[:room]
    with pytest.raises(DeviceError) as e:
        link.echo(bytes(room + 1))
    assert e.value.code == P.ERR_BAD_LENGTH
    c = link.device_counters()
    assert c["unknown_type"] == 1 and c["crc_errors"] == 0 and c["seq_errors"] == 0 and c["bad_tags"] == 0


def test_pipelined_requests_return_in_order(link):
    reqs = [link.submit(P.ECHO, bytes([i]) * (i + 1)) for i in range(40)]
    assert [link.wait(r) for r in reqs] == [bytes([i]) * (i + 1) for i in range(40)]
    assert link.counters.retransmissions == 0


def test_reconnect_resynchronises(link_device):
    rng = np.random.default_rng(8)
    samples = rng.integers(-128, 128, (3, 16)).astype(np.int8)
    for expected_steps in (3, 6):
        with Link.open(link_device.url, timeout=0.5) as link:
            assert link.train_many(samples, [0, 1, 2])[-1].steps == expected_steps


def test_device_without_nv_store(device_binary, tmp_path):
    dev = HostDevice(device_binary, nv_path=None).start()
    try:
        with Link.open(dev.url, timeout=0.5) as link:
            assert not link.description.capabilities & P.CAP_NV_STORE
            with pytest.raises(DeviceError) as e:
                link.save_weights()
            assert e.value.code == P.ERR_NV
    finally:
        dev.stop()


def test_inference_only_build(link_build_dir, tmp_path):
    dev = HostDevice(build_host_device(link_build_dir, infer_only=True), tmp_path / "nv.bin").start()
    try:
        with Link.open(dev.url, timeout=0.5) as link:
            d = link.description
            assert not d.trainable and d.num_params == 0 and d.trainable_bytes == 0
            assert d.update_mode == "" and "lr" not in d.report()   # no optimizer fields
            q = np.zeros(16, np.int8)
            np.testing.assert_array_equal(link.infer(q).outputs, np.zeros((1, 4), np.float32))
            for call in (lambda: link.train(q, 1), lambda: link.set_hparams(0.1),
                         link.read_weights, link.save_weights):
                with pytest.raises(DeviceError) as e:
                    call()
                assert e.value.code == P.ERR_NOT_TRAINABLE
            assert link.evaluate([q], [0]).samples == 1      # eval mode needs no training
    finally:
        dev.stop()


def test_float_samples_round_half_away_from_zero_like_tflite():
    """The link quantizes float samples exactly as the host build and TFLite do."""
    from types import SimpleNamespace

    from tinytrain import protocol as P
    from tinytrain.link import Link
    fake = SimpleNamespace(description=SimpleNamespace(input_size=4, input_dtype=P.DTYPE_S8,
                                                       input_scale=0.5, input_zero_point=0))
    x = np.array([0.25, -0.25, 0.75, 1.25], dtype=np.float32)     # exact ties: 0.5, -0.5, 1.5, 2.5
    got = np.frombuffer(Link.sample_bytes(fake, x), dtype=np.int8)
    np.testing.assert_array_equal(got, [1, -1, 2, 3])


def test_ctrl_c_during_train_stream_stops_after_the_chunk_in_flight(link):
    """The first SIGINT only asks train_stream to stop: the chunk in flight completes (no request
    is cut between its sequence number and its record, which left the link retrying for minutes),
    the report counts exactly the steps the device made, the link answers at once after, and
    SIGINT's handler is the one before."""
    import os
    import signal
    import time
    from tinytrain.online import train_stream
    rng = np.random.default_rng(8)
    link.write_params(random_params(rng))
    x = rng.integers(-128, 128, (64, 16)).astype(np.int8)
    y = rng.integers(0, 4, 64)
    before = link.stats().steps
    calls = []
    transmit, sent = link._transmit, []

    def transmit_then_ctrl_c(req, *args, **kwargs):
        transmit(req, *args, **kwargs)
        sent.append(req.seq)
        if len(sent) == 3 + (8 + link.batch_size() - 1) // link.batch_size():
            os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C inside the link, in the 2nd chunk

    link._transmit = transmit_then_ctrl_c
    previous = signal.getsignal(signal.SIGINT)
    report = train_stream(link, x, y, epochs=3, chunk=8, shuffle_seed=None,
                          on_progress=lambda p: calls.append(p["samples"]))
    link._transmit = transmit
    assert report.interrupted and report.samples == 16 == calls[-1]
    assert link.stats().steps - before == report.steps - before == 16
    t0 = time.monotonic()
    assert link.describe().output_size == 4 and time.monotonic() - t0 < 2
    assert signal.getsignal(signal.SIGINT) is previous          # Ctrl-C interrupts as before again
