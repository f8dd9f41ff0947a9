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
    _, fw, url = device
    d = json.loads(ok(tinytrain("describe", "--port", url, "--json")))
    assert d["board"] == "native" and d["trainable"] and d["model_name"] == "digits_cnn"
    assert d["input_shape"] == [1, 8, 8, 1] and d["trainable_bytes"] > 0
    # issue 10: the learning rate, the update mode and its bytes, dtype names; the trainable
    # bytes are everything the update keeps, as the build counted them
    memory = json.loads((fw / ".tinytrain.json").read_text())["memory"]
    assert (d["input_dtype"], d["output_dtype"], d["mode"]) == ("int8", "int8", "train")
    assert d["update_mode"] == "stochastic" and d["update_extra_bytes"] == memory["update_state_bytes"] == 4
    assert d["trainable_bytes"] == memory["trainable_param_bytes"] == d["param_bytes"] + d["momentum_bytes"] + 4
    assert d["lr"] == pytest.approx(0.01)


def test_describe_takes_the_optimizer_from_describe_without_another_round_trip(device, monkeypatch):
    """DESCRIBE carries lr / momentum / weight_decay: describe shows them without GET_HPARAMS."""
    from click.testing import CliRunner
    from tinytrain.cli import main
    from tinytrain.link import Link
    _, _, url = device
    with Link.open(url) as link:
        before = link.get_hparams()
        applied = link.set_hparams(0.0123, 0.0, 0.25)

    def no_round_trip(self):
        raise AssertionError("describe sent GET_HPARAMS")
    try:
        with monkeypatch.context() as m:
            m.setattr(Link, "get_hparams", no_round_trip)
            res = CliRunner().invoke(main, ["describe", "--port", url, "--json"])
        assert res.exit_code == 0, res.output
        d = json.loads(res.output)
        assert (d["lr"], d["momentum"], d["weight_decay"]) == tuple(float(f"{v:.7g}") for v in applied)
        assert d["lr"] == 0.0123 and d["weight_decay"] == 0.25
    finally:
        with Link.open(url) as link:
            link.set_hparams(*before)


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


def test_monitor_follows_a_polling_monitor(device):
    """A monitor polling the device holds the port and publishes what it reads: a second
    monitor follows it and prints those lines (not nothing)."""
    import time
    from tinytrain.status import status_path
    _, _, url = device
    poller = subprocess.Popen([sys.executable, "-m", "tinytrain", "monitor", "--port", url, "--interval", "0.2",
                               "--count", "400"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (status_path(url).exists() and f'"pid": {poller.pid},' in status_path(url).read_text()
                   and '"stats"' in status_path(url).read_text()):
            assert time.monotonic() < deadline and poller.poll() is None, "the polling monitor did not start"
            time.sleep(0.1)
        mon = tinytrain("monitor", "--port", url, "--count", "2", "--interval", "0.2", timeout=120)
        assert mon.returncode == 0, mon.stderr
        assert "following the process" in mon.stdout and f"PID {poller.pid}" in mon.stdout
        lines = [ln for ln in mon.stdout.splitlines() if "frames ok" in ln]
        assert len(lines) == 2 and all(ln.startswith("steps ") for ln in lines), mon.stdout
    finally:
        poller.send_signal(2)
        poller.communicate(timeout=60)


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


# --- issue 11: what a clumsy user (or an attacker) meets ---------------------------------------

def test_describe_reports_the_boards_simd(device):
    _, _, url = device
    d = json.loads(ok(tinytrain("describe", "--port", url, "--json")))
    assert d["simd_kind"] == "none" and d["simd"] is False      # boards/native.json: "simd": "none"
    assert d["authenticated"] is True and d["key_id"]


def test_the_key_stays_private(device):
    tmp, fw, url = device
    from tinytrain import keystore
    key = keystore.read_project_key(fw)
    for path in (fw / keystore.PROJECT_KEY_FILE, fw / "src" / keystore.KEY_HEADER):
        assert path.stat().st_mode & 0o777 == 0o600
    kid = keystore.key_id(key).hex()
    listed = ok(tinytrain("key", "list"))
    assert kid in listed and key.hex() not in listed
    manifest = (fw / ".tinytrain.json").read_text()
    assert kid in manifest and key.hex() not in manifest
    out = ok(tinytrain("describe", "--port", url))
    assert key.hex() not in out


def test_a_host_without_the_key_cannot_train_but_can_read(device, tmp_path):
    tmp, fw, url = device
    import os
    env_store = tmp_path / "other-host"
    run = lambda *a: subprocess.run([sys.executable, "-m", "tinytrain", *map(str, a)], capture_output=True,  # noqa: E731
                                    text=True, env=dict(os.environ, TINYTRAIN_KEYS=str(env_store)), cwd=tmp)
    assert run("describe", "--port", url).returncode == 0                # reads are open on this build
    proc = run("train", "--port", url, "--data", tmp / "train.npz", "--curve", tmp_path / "c")
    assert proc.returncode == 2 and "tinytrain key add" in proc.stderr and "Traceback" not in proc.stderr
    assert run("key", "add", fw).returncode == 0                         # the owner shares the key
    proc = run("weights", "save", "--port", url)
    assert proc.returncode == 0, proc.stderr


def test_a_second_client_is_told_who_holds_the_port(device):
    tmp, _, url = device
    feeder = _start_train(url, tmp, tmp / "held")
    try:
        _wait_until_feeding(url, feeder)
        for args in (("weights", "pull", "--port", url, tmp / "stolen.npz"), ("describe", "--port", url),
                     ("train", "--port", url, "--data", tmp / "train.npz", "--curve", tmp / "c3")):
            proc = tinytrain(*args, cwd=tmp)
            assert proc.returncode == 2 and f"in use by PID {feeder.pid}" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
        assert not (tmp / "stolen.npz").exists()
        assert feeder.poll() is None                 # the owner goes on undisturbed
    finally:
        feeder.send_signal(2)
        out, err = feeder.communicate(timeout=60)
    assert feeder.returncode == 130, err


def _pulled(url, tmp, name):
    ok(tinytrain("weights", "pull", "--port", url, tmp / name))
    with np.load(tmp / name) as z:
        return dict(z)


def _crc_of(url, tmp):
    return int(_pulled(url, tmp, "crc-check.npz")["crc32"])


def test_push_refuses_values_the_parameter_cannot_hold(device):
    tmp, _, url = device
    good = _pulled(url, tmp, "good.npz")
    names = [str(n) for n in good["order"]]
    int8 = next(n for n in names if good[f"param/{n}"].dtype == np.int8)
    int32 = next(n for n in names if good[f"param/{n}"].dtype == np.int32)
    import zlib
    for name, value, why in [(int8, 300, "outside [-128, 127]"), (int32, 1e12, "outside"),
                             (int32, 0.5, "not whole numbers")]:
        data = dict(good)
        arr = data[f"param/{name}"].astype(np.float64 if isinstance(value, float) else np.int32)
        arr.flat[0] = value
        data[f"param/{name}"] = arr
        blob = b"".join(np.ascontiguousarray(data[f"param/{n}"]).tobytes() for n in names)
        data["crc32"] = np.array(zlib.crc32(blob), dtype=np.uint32)
        np.savez(tmp / "bad.npz", **data)
        proc = tinytrain("weights", "push", "--port", url, tmp / "bad.npz")
        assert proc.returncode == 2 and name in proc.stderr and why in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert _crc_of(url, tmp) == int(good["crc32"])           # nothing reached the weights


def _steps(url):
    return json.loads(ok(tinytrain("describe", "--port", url, "--json")))["steps"]


def test_bad_data_is_refused_before_the_first_sample(device):
    tmp, _, url = device
    z = np.load(DIGITS / "digits_test.npz")
    x, y = z["x"][:100], z["y"][:100].copy()
    raw = (tmp / "train.npz").read_bytes()
    (tmp / "truncated.npz").write_bytes(raw[:len(raw) // 2])
    y_big = y.astype(np.int64)
    y_big[3] = 2**33
    np.savez(tmp / "label-big.npz", x=x, y=y_big)
    y_late = y.copy()
    y_late[46] = 10                                          # the 47th label: no such class
    np.savez(tmp / "label-late.npz", x=x, y=y_late)
    np.savez(tmp / "shape.npz", x=x[:, :7, :7], y=y)
    x_nan = x.copy()
    x_nan[9, 2, 2] = np.nan
    np.savez(tmp / "nan.npz", x=x_nan, y=y)
    np.savez(tmp / "labels-2d.npz", x=x, y=np.stack([y, y], axis=1))
    before = _steps(url)
    for name, why in [("truncated.npz", "not a readable .npz"), ("label-big.npz", "label 3 is 8589934592"),
                      ("label-late.npz", "label 46 is 10"), ("shape.npz", "(7, 7"), ("nan.npz", "sample 9"),
                      ("labels-2d.npz", "labels of shape")]:
        proc = tinytrain("train", "--port", url, "--data", tmp / name, "--curve", tmp / "c4", cwd=tmp)
        assert proc.returncode == 2 and why in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr
        proc = tinytrain("train", "--port", url, "--data", tmp / "train.npz", "--eval", tmp / name,
                         "--curve", tmp / "c4", cwd=tmp)
        assert proc.returncode == 2 and why in proc.stderr, (name, proc.stderr)
    assert _steps(url) == before                             # not one sample was trained


def test_train_sets_the_mode_it_needs(device):
    tmp, fw, url = device
    from tinytrain.link import Link
    with Link.open(url) as link:
        link.set_mode("eval")                                # as a dead link's evaluation left it
    before = _steps(url)
    res = json.loads(ok(tinytrain("train", "--port", url, "--data", tmp / "train.npz", "--lr", "0.001",
                                  "--curve", tmp / "c5", "--json", cwd=tmp)))
    assert res["steps"] - before == 120 == res["samples"] and res["rolled_back"] == 0
    with Link.open(url) as link:
        assert link.stats().mode == 0
