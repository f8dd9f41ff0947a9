"""What a training run shows, on a native board (a host process on a pty): `evaluate` on the
device (equal to the host build's), `train --eval --groups` (a point at sample 0, groups
before and after, running accuracy of this run, a few progress lines in a log),
`--seed`/`--shuffle` (exactly the order they say), `describe` (dtype names, the build's
learning rate and update mode), and a port held by another process (named, not stolen)."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT

DIGITS = ROOT / "examples" / "digits"
GROUPS = "old=0-4,new=5-9"


def tinytrain(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """digits CNN, last:2, nearest rounding (no state beside the weights: a pushed set of
    weights and an order of samples decide the result), lr 0.05."""
    tmp = tmp_path_factory.mktemp("train-view")
    fw = tmp / "fw"
    ok(tinytrain("build", DIGITS / "digits_cnn.tflite", "--train", "last:2", "--update", "nearest", "--lr", "0.05",
                 "--board", "native", "-o", fw))
    url = ok(tinytrain("flash", fw, "--detach")).split("port: ")[1].split()[0]
    z = np.load(DIGITS / "digits_test.npz")
    np.savez(tmp / "train.npz", x=z["x"][:160], y=z["y"][:160])
    np.savez(tmp / "eval.npz", x=z["x"][300:420], y=z["y"][300:420])
    yield tmp, fw, url
    ok(tinytrain("stop", fw))


def test_evaluate_train_groups_and_running_accuracy(device):
    tmp, _, url = device
    ok(tinytrain("weights", "pull", "--port", url, tmp / "start.npz"))
    dev = json.loads(ok(tinytrain("evaluate", "--port", url, "--data", tmp / "eval.npz", "--groups", GROUPS,
                                  "--json", "--plot", tmp / "cm.png")))
    host = json.loads(ok(tinytrain("evaluate", DIGITS / "digits_cnn.tflite", "--data", tmp / "eval.npz",
                                   "--groups", GROUPS, "--json")))
    assert dev["board"] == "native" and host["board"] == "host"
    assert dev["confusion"] == host["confusion"], "device inference equals the host build's"
    assert dev["groups"] == host["groups"] and dev["samples"] == 120
    assert (tmp / "cm.png").read_bytes()[:4] == b"\x89PNG"

    proc = tinytrain("train", "--port", url, "--data", tmp / "train.npz", "--eval", tmp / "eval.npz",
                     "--groups", GROUPS, "--epochs", "3", "--curve", tmp / "c", "--json", cwd=tmp)
    res = json.loads(ok(proc))
    # held-out before: the point at sample 0, the same figures as evaluate's
    assert res["eval_before"]["accuracy"] == dev["accuracy"]
    assert res["eval_before"]["groups"] == {k: g["accuracy"] for k, g in dev["groups"].items()}
    rows = (tmp / "c.csv").read_text().splitlines()
    assert rows[1].startswith("0,") and rows[1].split(",")[2] == ""      # sample 0: held-out, no loss yet
    after = json.loads(ok(tinytrain("evaluate", "--port", url, "--data", tmp / "eval.npz", "--groups", GROUPS,
                                    "--json")))
    assert res["eval_after"]["accuracy"] == after["accuracy"] == res["final_eval_accuracy"]
    assert res["eval_after"]["groups"] == {k: g["accuracy"] for k, g in after["groups"].items()}
    # the host build holding the parameters the device learned answers as the device does
    ok(tinytrain("weights", "pull", "--port", url, tmp / "learned.npz"))
    on_host = json.loads(ok(tinytrain("evaluate", DIGITS / "digits_cnn.tflite", "--train", "last:2", "--weights",
                                      tmp / "learned.npz", "--data", tmp / "eval.npz", "--groups", GROUPS, "--json")))
    assert on_host["confusion"] == after["confusion"] and on_host["weights"] == str(tmp / "learned.npz")
    assert on_host["confusion"] != host["confusion"], "the learned parameters are the ones evaluated"
    # running accuracy and loss of this run (3 epochs of 160): not the device's counters since boot
    assert 0 < res["running_accuracy"] <= 1 and res["final_loss"] > 0
    assert res["shuffle"] is True and res["seed"] == 0
    # stderr is not a terminal here: a few summary lines, not a bar redrawn hundreds of times
    log = proc.stderr.splitlines()
    assert 2 <= len(log) <= 12 and "\r" not in proc.stderr, proc.stderr
    assert log[0].startswith("training: 480 samples, held-out before: all ")
    assert log[-1].startswith("training: 480/480 (100%)") and " loss " in log[-1]
    assert res["running_accuracy"] == pytest.approx(_curve_accuracy(tmp / "c.csv"))
    # a second run's running accuracy is its own, not the device's count since it booted
    again = json.loads(ok(tinytrain("train", "--port", url, "--data", tmp / "train.npz", "--epochs", "1",
                                    "--curve", tmp / "c2", "--json", cwd=tmp)))
    assert again["running_accuracy"] == pytest.approx(_curve_accuracy(tmp / "c2.csv"))
    ok(tinytrain("weights", "push", "--port", url, tmp / "start.npz"))


def _curve_accuracy(csv) -> float:
    """Running accuracy of a whole run from its curve: the intervals' accuracies, weighted."""
    import csv as csvlib
    rows = [r for r in csvlib.DictReader(open(csv)) if r["running_accuracy"]]
    prev, correct = 0, 0.0
    for r in rows:
        correct += float(r["running_accuracy"]) * (int(r["samples"]) - prev)
        prev = int(r["samples"])
    return correct / prev


def _trained_crc(url, tmp, data, *args):
    ok(tinytrain("weights", "push", "--port", url, tmp / "start.npz"))
    ok(tinytrain("train", "--port", url, "--data", data, "--curve", tmp / "s", *args, cwd=tmp))
    ok(tinytrain("weights", "pull", "--port", url, tmp / "w.npz"))
    return int(np.load(tmp / "w.npz")["crc32"])


def test_seed_and_shuffle_decide_the_order_of_samples(device):
    tmp, _, url = device
    ok(tinytrain("weights", "pull", "--port", url, tmp / "start.npz"))
    start = int(np.load(tmp / "start.npz")["crc32"])
    z = np.load(tmp / "train.npz")
    n = len(z["y"])
    # --seed 7 over 2 epochs == the file in the order a generator seeded with 7 draws, epoch by epoch
    rng = np.random.default_rng(7)
    order = np.concatenate([rng.permutation(n), rng.permutation(n)])
    np.savez(tmp / "ordered.npz", x=z["x"][order], y=z["y"][order])
    seeded = _trained_crc(url, tmp, tmp / "train.npz", "--seed", "7", "--epochs", "2")
    assert seeded != start
    assert _trained_crc(url, tmp, tmp / "ordered.npz", "--no-shuffle") == seeded
    assert _trained_crc(url, tmp, tmp / "train.npz", "--seed", "7", "--epochs", "2") == seeded
    assert _trained_crc(url, tmp, tmp / "train.npz", "--seed", "8", "--epochs", "2") != seeded
    # --no-shuffle: the file's order, epoch after epoch
    twice = np.concatenate([np.arange(n), np.arange(n)])
    np.savez(tmp / "twice.npz", x=z["x"][twice], y=z["y"][twice])
    assert (_trained_crc(url, tmp, tmp / "train.npz", "--no-shuffle", "--epochs", "2")
            == _trained_crc(url, tmp, tmp / "twice.npz", "--no-shuffle"))
    ok(tinytrain("weights", "push", "--port", url, tmp / "start.npz"))


def test_describe_shows_dtype_names_and_what_the_build_knows(device):
    tmp, fw, url = device
    d = json.loads(ok(tinytrain("describe", "--port", url, "--json")))
    assert d["input_dtype"] == "int8" and d["output_dtype"] == "int8"
    manifest = json.loads((fw / ".tinytrain.json").read_text())
    assert d["lr_as_built"] == pytest.approx(0.05) and d["update_mode"] == "nearest" and d["scheme"] == "last:2"
    assert d["lr"] > 0 and d["momentum"] == 0          # what the device applies now (train --lr sets it)
    assert d["update_extra_bytes"] == manifest["memory"]["update_state_bytes"] == 0
    assert d["planned_trainable_bytes"] == manifest["memory"]["trainable_param_bytes"]
    text = ok(tinytrain("describe", "--port", url))
    assert "input_dtype        int8" in text and "as built (project" in text
    # the update mode: the device's own DESCRIBE field where it reports one, else the manifest's
    assert "update_mode        nearest" in text or "update_mode              nearest" in text


def test_describe_of_a_stochastic_build_counts_its_extra_bytes(tmp_path):
    fw = tmp_path / "fw"
    ok(tinytrain("build", DIGITS / "digits_cnn.tflite", "--train", "last:1", "--update", "residual", "--lr", "0.02",
                 "--board", "native", "-o", fw))
    url = ok(tinytrain("flash", fw, "--detach")).split("port: ")[1].split()[0]
    try:
        d = json.loads(ok(tinytrain("describe", "--port", url, "--json", "--project", fw)))
        assert d["update_mode"] == "residual" and d["lr"] == d["lr_as_built"] == pytest.approx(0.02)
        assert d["update_extra_bytes"] > 0       # a byte of fraction per trained weight
        assert d["trainable_bytes"] == d["planned_trainable_bytes"]      # the device counts them too
    finally:
        ok(tinytrain("stop", fw))


def test_a_held_port_is_refused_naming_its_holder_and_monitor_follows_it_live(device):
    tmp, _, url = device
    feeder = subprocess.Popen([sys.executable, "-m", "tinytrain", "train", "--port", url, "--data",
                               str(tmp / "train.npz"), "--epochs", "300", "--lr", "0.0001", "--curve", str(tmp / "f")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
    try:
        from tinytrain.status import status_path
        deadline = time.monotonic() + 60
        def feeding():        # the feeder's own status file (an earlier run's may still be there)
            text = status_path(url).read_text() if status_path(url).exists() else ""
            return f'"pid": {feeder.pid},' in text.split("\n", 1)[0] and '"progress"' in text
        while not feeding():
            assert time.monotonic() < deadline and feeder.poll() is None, "the feeder did not start"
            time.sleep(0.1)
        t0 = time.monotonic()
        proc = tinytrain("describe", "--port", url)
        assert proc.returncode == 2 and time.monotonic() - t0 < 20
        assert f"PID {feeder.pid}" in proc.stderr and "train" in proc.stderr, proc.stderr
        mon = tinytrain("monitor", "--port", url, "--count", "3", "--interval", "0.3", timeout=120)
        assert mon.returncode == 0, mon.stderr
        assert f"PID {feeder.pid}" in mon.stdout
        live = [ln for ln in mon.stdout.splitlines() if "steps/s" in ln]
        assert len(live) >= 2 and all(" loss " in ln for ln in live)
        assert all(float(ln.split(" steps/s")[0].split()[-1]) > 0 for ln in live)
    finally:
        feeder.send_signal(2)
        feeder.communicate(timeout=60)
