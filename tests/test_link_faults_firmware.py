"""The faulty link against real firmware: the generated int8 training step of the digits
CNN on the QEMU Cortex-M4F, trained once over a clean link and once through a proxy that
damages, drops and duplicates frames in both directions. Training completes, every
damaged frame is detected by the side that receives it, and the weights are equal, bit for
bit."""
import shutil

import numpy as np
import pytest

from conftest import ROOT
from faulty_proxy import FaultyProxy
import tinytrain
from tinytrain import emulator, project
from tinytrain.frontends import load_model
from tinytrain.link import Link

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or
                                shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc not installed")


def train(link, x, y):
    link.set_hparams(0.02, 0.0, 0.0)
    results = link.train_many(x, y)
    return results, link.read_weights()


def test_training_through_a_faulty_link_equals_a_clean_run(tmp_path):
    graph = load_model(ROOT / "examples" / "digits" / "digits_cnn.tflite")
    program = tinytrain.compile(graph, scheme="last:2", board="mps2-an386", lr=0.02)
    fw = tmp_path / "fw"
    program.write_project(fw)
    project.build_project(fw)
    data = np.load(ROOT / "examples" / "digits" / "digits_test.npz")
    inp = program.graph.tensors[program.graph.inputs[0]]
    from tinytrain.hostmodel import quantize_input
    x = quantize_input(data["x"][:240], inp.scale, inp.zero_point)
    y = (data["y"][:240] + 1) % 10          # relabelled: every step changes the weights

    # Two samples per TRAIN request: batched, and enough frames for the faults to hit both ways.
    with emulator.boot(fw) as running, Link.open(running.url, batch=2) as link:
        clean, clean_w = train(link, x, y)
    (fw / project.NV_FILE).unlink(missing_ok=True)
    with emulator.boot(fw) as running:
        host, port = running.url.removeprefix("socket://").rsplit(":", 1)
        proxy = FaultyProxy((host, int(port)), rate=0.08, seed=7)
        try:
            with Link.open(proxy.url, timeout=0.3, retries=30, batch=2) as link:
                faulty, faulty_w = train(link, x, y)
                proxy.to_device.rate = proxy.to_host.rate = 0.0     # a quiet link to read the counters
                counters = link.device_counters()
        finally:
            proxy.stop()
    assert [(r.loss, r.predicted, r.steps) for r in faulty] == [(r.loss, r.predicted, r.steps) for r in clean]
    assert faulty_w == clean_w
    assert clean[-1].steps == len(x)
    to_dev, to_host = proxy.stats["to_device"], proxy.stats["to_host"]
    for side in (to_dev, to_host):
        assert side["damaged"] + side["drop"] + side["duplicate"] >= 0.01 * side["frames"]
    assert to_dev["damaged"] > 0 and to_host["damaged"] > 0
    assert counters["crc_errors"] + counters["malformed"] + counters["too_long"] == to_dev["damaged"]
    assert link.counters.bad_frames == to_host["damaged"]
