"""Guarded training: non-finite samples refused on the host and on the device; a step whose
loss or update is not finite rolled back (exactly, with the RAM copy; to the newest save
without it) and counted; a save of non-finite weights refused; training that sets the mode
it needs and fails loudly when the device's steps do not advance."""
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
from harness import HostDevice, build_host_device, device_binary, link_build_dir, link_device  # noqa: E402,F401

from tinytrain import protocol as P  # noqa: E402
from tinytrain.errors import TinyTrainError  # noqa: E402
from tinytrain.link import DeviceError, Link  # noqa: E402
from tinytrain.online import DeviceNotLearning, train_stream  # noqa: E402

HUGE_LR = 3e38


@pytest.fixture(scope="module")
def float_binary(link_build_dir):
    return build_host_device(link_build_dir, defines=["-DTT_TEST_FLOAT_INPUT"], name="link_device_float")


@pytest.fixture(scope="module")
def nospare_binary(link_build_dir):
    return build_host_device(link_build_dir, defines=["-DTT_LINK_SPARE=0"], name="link_device_nospare")


def samples(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (n, 16)).astype(np.int8), rng.integers(0, 4, n)


def finite_weights(link) -> bool:
    return bool(np.all(np.isfinite(np.frombuffer(link.read_weights(), "<f4"))))


def test_the_host_refuses_non_finite_samples(link_device):
    with Link.open(link_device.url) as link:
        for bad in (np.nan, np.inf, -np.inf):
            x = np.zeros(16, np.float32)
            x[5] = bad
            for call in (lambda: link.train(x, 1), lambda: link.infer(x), lambda: link.evaluate([x], [1])):
                with pytest.raises(TinyTrainError, match="NaN or infinite"):
                    call()
        st = link.stats()
        assert (st.steps, st.train_samples, st.eval_samples, st.infer_count) == (0, 0, 0, 0)


def test_the_device_refuses_non_finite_samples(float_binary, tmp_path):
    dev = HostDevice(float_binary, tmp_path / "nv.bin").start()
    try:
        with Link.open(dev.url) as link:
            assert link.description.input_dtype == P.DTYPE_F32
            ok = np.linspace(-1, 1, 16).astype("<f4")
            bad = ok.copy()
            bad[3] = np.nan
            two = struct.pack("<BB", 0, 2) + struct.pack("<i", 1) + ok.tobytes() + struct.pack("<i", 2) + bad.tobytes()
            with pytest.raises(DeviceError) as e:          # the request as a host that does not check
                link.request(P.TRAIN, two)
            assert (e.value.code, e.value.detail) == (P.ERR_NONFINITE, 1)
            for req, payload in ((P.INFER, bad.tobytes()),
                                 (P.INPUT_WRITE, struct.pack("<I", 0) + np.array([np.inf], "<f4").tobytes())):
                with pytest.raises(DeviceError) as e:
                    link.request(req, payload)
                assert e.value.code == P.ERR_NONFINITE
            st = link.stats()
            assert (st.steps, st.infer_count, st.refused_nonfinite) == (0, 0, 3)
            assert link.train(ok, 1).steps == 1             # finite samples still train
            assert finite_weights(link)
    finally:
        dev.stop()


def test_a_step_that_is_not_finite_is_rolled_back_exactly_and_counted(link_device):
    x, y = samples(24)
    with Link.open(link_device.url) as link:
        link.set_hparams(HUGE_LR, 0.5, 0.0)
        rolled = trained = 0
        for xi, yi in zip(x, y):
            before = link.read_weights()
            r = link.train(xi, int(yi))
            if r.rolled_back:
                rolled += 1
                assert link.read_weights() == before       # parameters (and momentum) as before
            else:
                trained += 1
            assert finite_weights(link)
        st = link.stats()
        assert rolled >= 5 and (st.rolled_back, st.steps, st.train_samples) == (rolled, trained, trained)
        assert all(r.rolled_back for r in link.train_many(x[:3], y[:3]))
        link.save_weights()                                # finite weights save fine


def test_without_the_ram_copy_a_bad_step_goes_back_to_the_newest_save(nospare_binary, tmp_path):
    dev = HostDevice(nospare_binary, tmp_path / "nv.bin").start()
    x, y = samples(12, 1)
    try:
        with Link.open(dev.url) as link:
            assert not link.description.capabilities & P.CAP_SPARE_RAM
            saved = link.read_weights()
            link.save_weights()
            link.set_hparams(0.05, 0.0, 0.0)
            link.train_many(x[:4], y[:4])                 # learn something after the save
            link.set_hparams(HUGE_LR, 0.0, 0.0)
            results = link.train_many(x[4:], y[4:])
            assert any(r.rolled_back for r in results)
            assert finite_weights(link)
            first = next(i for i, r in enumerate(results) if r.rolled_back)
            if all(r.rolled_back for r in results[first:]):
                assert link.read_weights() == saved        # back to the save, and stuck there
    finally:
        dev.stop()


def test_non_finite_weights_are_never_saved(nospare_binary, tmp_path):
    """No RAM copy and no save to go back to: the device stops training, and refuses to save."""
    dev = HostDevice(nospare_binary, tmp_path / "nv.bin").start()
    x, y = samples(12, 2)
    try:
        with Link.open(dev.url) as link:
            link.set_hparams(HUGE_LR, 0.0, 0.0)
            stuck = None
            for xi, yi in zip(x, y):
                try:
                    link.train(xi, int(yi))
                except DeviceError as e:
                    stuck = e
                    break
            assert stuck is not None and stuck.code == P.ERR_NONFINITE
            assert not finite_weights(link)
            with pytest.raises(DeviceError) as e:
                link.save_weights()
            assert e.value.code == P.ERR_NONFINITE
            assert link.stats().rolled_back >= 1
            with pytest.raises(DeviceError) as e:
                link.load_weights()                        # nothing saved to go back to
            assert e.value.code == P.ERR_NO_SAVED
            link.write_weights(np.zeros(68, "<f4").tobytes())   # a push un-sticks it
            link.set_hparams(0.05, 0.0, 0.0)
            assert not link.train(x[0], int(y[0])).rolled_back
    finally:
        dev.stop()


def test_training_sets_the_mode_it_needs(link_device):
    """A device left in eval mode (say, by a link that died during an evaluation) trains."""
    x, y = samples(32, 3)
    with Link.open(link_device.url) as link:
        link.set_mode("eval")
    with Link.open(link_device.url) as link:
        report = train_stream(link, x, y, chunk=8, eval_x=x[:8], eval_y=y[:8])
        assert report.steps == 32 and report.samples == 32
        assert link.stats().mode == P.MODE_TRAIN


def test_training_fails_loudly_when_steps_do_not_advance(link_device):
    x, y = samples(16, 4)
    with Link.open(link_device.url) as link:
        link.write_weights(np.full(68, 3e38, "<f4").tobytes())   # every loss overflows
        with pytest.raises(DeviceNotLearning, match="rolled back"):
            train_stream(link, x, y, chunk=8)
        assert link.stats().steps == 0


def test_the_train_command_fails_loudly_when_nothing_is_learned(link_device, tmp_path):
    import subprocess
    x, y = samples(40, 5)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    with Link.open(link_device.url) as link:
        link.write_weights(np.full(68, 3e38, "<f4").tobytes())   # every loss overflows
    proc = subprocess.run([sys.executable, "-m", "tinytrain", "train", "--port", link_device.url, "--data",
                           str(tmp_path / "data.npz"), "--curve", str(tmp_path / "c")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "rolled back" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    with Link.open(link_device.url) as link:
        assert link.stats().steps == 0
