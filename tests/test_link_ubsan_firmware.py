"""The native firmware built with UBSan (and ASan), trained over its pty with a learning rate
large enough to drive the int32 biases to their limits, as the QAS update does by design:
where a saturated bias meets an accumulator the kernels must saturate, not overflow
(undefined behaviour, which aborts this build). Then ordinary training, as a user runs it."""
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
import tinytrain
from tinytrain import project
from tinytrain.frontends import load_model
from tinytrain.hostmodel import quantize_input
from tinytrain.link import Link
from tinytrain.training.qas import INT_RANGE

DIGITS = ROOT / "examples" / "digits"
SANITIZE = ["-fsanitize=undefined,address", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


def sanitized_native_firmware(out) -> Path:
    """The generated native project's sources (as PlatformIO builds them), compiled with
    the sanitizers instead."""
    src = out / "src"
    sources = sorted(src.glob("*.c")) + sorted((src / "tinytrain").rglob("*.c"))
    includes = [src, src / "tinytrain" / "include", src / "tinytrain" / "runtime", src / "tinytrain" / "hal"]
    exe = out / "program-ubsan"
    cmd = ["gcc", "-std=c99", "-O1", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE,
           *[f"-I{i}" for i in includes], *map(str, sources), "-lm", "-lutil", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return exe


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    graph = load_model(DIGITS / "digits_cnn.tflite")
    compiled = tinytrain.compile(graph, scheme="last:2", board="native", lr=0.01)
    out = tmp_path_factory.mktemp("ubsan") / "fw"
    compiled.write_project(out)
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    data = np.load(DIGITS / "digits_test.npz")
    x = quantize_input(data["x"][:64], inp.scale, inp.zero_point).reshape(64, -1)
    return out, sanitized_native_firmware(out), x, data["y"][:64]


def boot(out, exe):
    log = open(out / "ubsan.log", "wb")
    proc = subprocess.Popen([str(exe)], cwd=out, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(r"TT_PTY (\S+)", (out / "ubsan.log").read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        assert proc.poll() is None, (out / "ubsan.log").read_text()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the sanitized firmware did not start")


def test_saturated_biases_meet_accumulators_without_undefined_behaviour(firmware):
    out, exe, x, y = firmware
    (out / project.NV_FILE).unlink(missing_ok=True)
    proc, url = boot(out, exe)
    try:
        with Link.open(url, timeout=5.0) as link:
            link.set_hparams(1e12, 0.0, 0.0)              # every bias update saturates
            link.train_many(x[:8], (y[:8] + 1) % 10)
            biases = [v for k, v in link.read_params().items() if k.endswith("bias") or "bias" in k]
            lo, hi = INT_RANGE["int32"]                   # trained biases saturate there
            assert any(np.any(b.astype(np.int64) == hi) or np.any(b.astype(np.int64) == lo) for b in biases), \
                "the test must drive a bias to the trained int32 limit"
            link.train_many(x[8:24], y[8:24])             # forwards and backwards through them
            link.infer_many(x[:8])
            assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    log = (out / "ubsan.log").read_text(errors="replace")
    assert "runtime error" not in log and "AddressSanitizer" not in log, log[-3000:]


def test_ordinary_training_on_the_sanitized_firmware(firmware):
    out, exe, x, y = firmware
    (out / project.NV_FILE).unlink(missing_ok=True)
    proc, url = boot(out, exe)
    try:
        with Link.open(url, timeout=5.0) as link:
            link.set_hparams(0.01, 0.0, 0.0)
            results = link.train_many(x, y)
            assert results[-1].steps == len(x) and not any(r.rolled_back for r in results)
            link.write_weights(link.read_weights())
            link.save_weights()
            assert link.evaluate(x, y).samples == len(x)
    finally:
        proc.kill()
        proc.wait()
    log = (out / "ubsan.log").read_text(errors="replace")
    assert "runtime error" not in log and "AddressSanitizer" not in log, log[-3000:]
