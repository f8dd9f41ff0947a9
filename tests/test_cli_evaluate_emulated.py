"""`evaluate` and `train --groups` on the emulated Cortex-M4F (mps2-an386 under QEMU, a TCP
serial socket): the device's confusion matrix equals the host build's before training and
the host training build's (holding the pulled parameters) after; describe names dtypes."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

DIGITS = ROOT / "examples" / "digits"
GROUPS = "old=0-4,new=5-9"

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc not installed")


def tinytrain(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_evaluate_and_train_on_the_emulated_cortex_m4(tmp_path):
    fw = tmp_path / "fw"
    ok(tinytrain("build", DIGITS / "digits_cnn.tflite", "--train", "last:1", "--board", "mps2-an386", "-o", fw))
    url = ok(tinytrain("flash", fw, "--detach")).split("port: ")[1].split()[0]
    assert url.startswith("socket://")
    try:
        z = np.load(DIGITS / "digits_test.npz")
        np.savez(tmp_path / "train.npz", x=z["x"][:96], y=z["y"][:96])
        np.savez(tmp_path / "eval.npz", x=z["x"][300:380], y=z["y"][300:380])
        host = json.loads(ok(tinytrain("evaluate", DIGITS / "digits_cnn.tflite", "--data", tmp_path / "eval.npz",
                                       "--groups", GROUPS, "--json")))
        dev = json.loads(ok(tinytrain("evaluate", "--port", url, "--data", tmp_path / "eval.npz", "--groups", GROUPS,
                                      "--json")))
        assert dev["board"] == "mps2-an386" and dev["confusion"] == host["confusion"]
        res = json.loads(ok(tinytrain("train", "--port", url, "--data", tmp_path / "train.npz", "--eval",
                                      tmp_path / "eval.npz", "--groups", GROUPS, "--lr", "0.05", "--seed", "3",
                                      "--curve", tmp_path / "c", "--json", cwd=tmp_path)))
        assert res["eval_before"]["groups"] == {k: g["accuracy"] for k, g in dev["groups"].items()}
        assert res["seed"] == 3 and res["samples"] == 96
        ok(tinytrain("weights", "pull", "--port", url, tmp_path / "learned.npz"))
        after = json.loads(ok(tinytrain("evaluate", "--port", url, "--data", tmp_path / "eval.npz", "--json")))
        on_host = json.loads(ok(tinytrain("evaluate", DIGITS / "digits_cnn.tflite", "--train", "last:1", "--weights",
                                          tmp_path / "learned.npz", "--data", tmp_path / "eval.npz", "--json")))
        assert on_host["confusion"] == after["confusion"]
        d = json.loads(ok(tinytrain("describe", "--port", url, "--json")))
        assert d["input_dtype"] == "int8" and d["update_mode"] == "stochastic" and d["lr"] == pytest.approx(0.05)
    finally:
        ok(tinytrain("stop", fw))
