"""The device commands end to end, as a user types them: build --train, flash --detach,
describe, train (curve CSV + PNG), monitor, weights save/pull/push/load, stop; on the
native board (a host process on a pty), plus the errors a user meets."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

DIGITS = ROOT / "examples" / "digits"


def tinytrain(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """A detached native board running the digits CNN with a training step; stopped at the end."""
    tmp = tmp_path_factory.mktemp("cli-device")
    fw = tmp / "fw"
    ok(tinytrain("build", DIGITS / "digits_cnn.tflite", "--train", "last:2", "--board", "native", "-o", fw))
    out = ok(tinytrain("flash", fw, "--detach"))
    url = out.split("port: ")[1].split()[0]
    z = np.load(DIGITS / "digits_test.npz")
    np.savez(tmp / "train.npz", x=z["x"][:120], y=z["y"][:120])
    np.savez(tmp / "eval.npz", x=z["x"][300:400], y=z["y"][300:400])
    yield tmp, fw, url
    ok(tinytrain("stop", fw))


def test_describe(device):
    _, _, url = device
    d = json.loads(ok(tinytrain("describe", "--port", url, "--json")))
    assert d["board"] == "native" and d["trainable"] and d["model_name"] == "digits_cnn"
    assert d["input_shape"] == [1, 8, 8, 1] and d["trainable_bytes"] > 0


def test_train_writes_curve_and_keeps_learning(device):
    tmp, _, url = device
    curve = tmp / "curve"
    res = json.loads(ok(tinytrain("train", "--port", url, "--data", tmp / "train.npz", "--eval", tmp / "eval.npz",
                                  "--epochs", "2", "--lr", "0.005", "--curve", curve, "--json", cwd=tmp)))
    assert res["samples"] == 240 and res["steps"] >= 240
    assert res["final_eval_accuracy"] > 0.9 and res["running_accuracy"] > 0.9
    lines = (tmp / "curve.csv").read_text().splitlines()
    assert lines[0].startswith("samples,steps,loss") and len(lines) >= 3
    assert (tmp / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mon = ok(tinytrain("monitor", "--port", url, "--count", "1"))
    assert "steps" in mon and "frames ok" in mon


def test_weights_save_pull_push_load(device):
    tmp, _, url = device
    assert "saved generation" in ok(tinytrain("weights", "save", "--port", url))
    ok(tinytrain("weights", "pull", "--port", url, tmp / "backup.npz"))
    before = np.load(tmp / "backup.npz")
    ok(tinytrain("train", "--port", url, "--data", tmp / "train.npz", "--lr", "0.05", "--curve", tmp / "c2", cwd=tmp))
    ok(tinytrain("weights", "pull", "--port", url, tmp / "changed.npz"))
    assert int(np.load(tmp / "changed.npz")["crc32"]) != int(before["crc32"])
    ok(tinytrain("weights", "push", "--port", url, tmp / "backup.npz"))
    ok(tinytrain("weights", "pull", "--port", url, tmp / "again.npz"))
    assert int(np.load(tmp / "again.npz")["crc32"]) == int(before["crc32"])
    assert "loaded generation" in ok(tinytrain("weights", "load", "--port", url))


def test_push_of_another_models_weights_is_refused(device):
    tmp, _, url = device
    ok(tinytrain("weights", "pull", "--port", url, tmp / "mine.npz"))
    with np.load(tmp / "mine.npz") as z:
        data = dict(z)
    data["model_hash"] = np.array("0000000000000000")
    np.savez(tmp / "other.npz", **data)
    proc = tinytrain("weights", "push", "--port", url, tmp / "other.npz")
    assert proc.returncode == 2 and "0000000000000000" in proc.stderr


def test_train_on_an_inference_build_is_refused(tmp_path):
    fw = tmp_path / "fw"
    ok(tinytrain("build", DIGITS / "digits_cnn.tflite", "--board", "native", "-o", fw))
    url = ok(tinytrain("flash", fw, "--detach")).split("port: ")[1].split()[0]
    try:
        proc = tinytrain("train", "--port", url, "--data", DIGITS / "digits_test.npz", "--curve", tmp_path / "c")
        assert proc.returncode == 2 and "--train" in proc.stderr
    finally:
        ok(tinytrain("stop", fw))


def test_unreachable_port_is_a_clear_error(tmp_path):
    proc = tinytrain("describe", "--port", "socket://127.0.0.1:9")
    assert proc.returncode == 2 and "127.0.0.1:9" in proc.stderr


def _start_train(url, tmp, curve, epochs="200"):
    return subprocess.Popen([sys.executable, "-m", "tinytrain", "train", "--port", url, "--data", str(tmp / "train.npz"),
                             "--epochs", epochs, "--lr", "0.001", "--curve", str(curve)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)


def _wait_until_feeding(url, proc, timeout=60):
    """Until the feeder holds the port and publishes its status (what monitor follows)."""
    import time
    from tinytrain.status import owner_alive, status_path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        path = status_path(url)
        if path.exists() and owner_alive(path) and "curve" in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError("the feeding process did not start")


def test_monitor_follows_the_process_that_feeds_the_device(device):
    tmp, _, url = device
    feeder = _start_train(url, tmp, tmp / "fed")
    try:
        _wait_until_feeding(url, feeder)
        mon = tinytrain("monitor", "--port", url, "--count", "2", "--interval", "0.2", timeout=120)
        assert mon.returncode == 0, mon.stderr
        assert "following the process" in mon.stdout
        assert mon.stdout.count("samples") >= 2 and "loss" in mon.stdout
    finally:
        feeder.send_signal(2)
        feeder.communicate(timeout=60)


def test_ctrl_c_stops_cleanly_and_keeps_what_was_learned(device):
    import time
    tmp, _, url = device
    before = json.loads(ok(tinytrain("describe", "--port", url, "--json")))["steps"]
    feeder = _start_train(url, tmp, tmp / "interrupted")
    _wait_until_feeding(url, feeder)
    time.sleep(1)
    feeder.send_signal(2)                      # SIGINT, as Ctrl-C
    out, err = feeder.communicate(timeout=60)
    assert feeder.returncode == 130, err
    assert "interrupted" in out
    done = int(out.split("interrupted: ")[1].split()[0])
    assert done > 0
    lines = (tmp / "interrupted.csv").read_text().splitlines()
    assert int(lines[-1].split(",")[0]) == done
    after = json.loads(ok(tinytrain("describe", "--port", url, "--json")))["steps"]
    assert after - before == done, "every acknowledged step stays on the device, none is lost or doubled"
