"""MCUNet-5FPS (128x128 int8, ~0.6 MB of constants) builds for the emulated Cortex-M55
(mps3-an547: code and constants in its 8 MiB QSPI flash; its 512 KiB ITCM alone refused the
model) and its inference outputs equal the host build's, byte for byte."""
import shutil

import numpy as np
import pytest

import tinytrain
from tinytrain import emulator, project
from tinytrain.frontends import load_model
from tinytrain.hostmodel import HostModel
from tinytrain.link import Link

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or
                                shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc not installed")


def test_mcunet_inference_on_the_emulated_m55_equals_the_host(tte_models, tmp_path):
    graph = load_model(tte_models / "mcunet-5fps.json")
    fw = tmp_path / "fw"
    emitted = project.emit_project(tinytrain.compile(graph, board="mps3-an547"), fw)
    assert emitted["memory"]["flash_bytes"] > 512 * 1024    # more than the ITCM holds
    built = project.build_project(fw)
    assert 512 * 1024 < built["flash_bytes"] <= built["flash_limit"]

    x = np.random.default_rng(11).integers(-128, 128, size=(1, 128, 128, 3), dtype=np.int8)
    want = HostModel(graph, tmp_path / "host").run(x).reshape(1, -1)   # one sample: ~13 s of QEMU
    # MCUNet's 1000 classes take several frames: infer_many reads the rest of each output
    # before the next sample runs (tests/test_link_messages.py tests that with 6 samples)
    with emulator.boot(fw) as running, Link.open(running.url, timeout=5.0) as link:
        results = link.infer_many(x.reshape(1, -1))
    got = np.stack([r.outputs.reshape(-1) for r in results]).astype(np.int8)
    np.testing.assert_array_equal(got, want)
    assert [r.predicted for r in results] == list(np.argmax(want, axis=1))
    assert len(np.unique(want)) > 20                      # not degenerate
    assert all(r.work > 100_000_000 for r in results)     # a real 128x128 inference
