"""The three int8 models of the 256KB paper (MCUNet-5FPS, MbV2-w0.35, Proxyless-w0.3; 128x128,
~0.6 MB of constants) build for both emulated boards with the board's optimised kernel
variants (Cortex-M4F, mps2-an386: the `_dsp` kernels; Cortex-M55, mps3-an547: the `_mve`
ones, code and constants in its 8 MiB QSPI flash, its 512 KiB ITCM alone refused MCUNet),
and their inference outputs equal the host build's (the reference kernels), byte for byte."""
import shutil

import numpy as np
import pytest

import tinytrain
from tinytrain import emulator, project
from tinytrain.frontends import load_model
from tinytrain.hostmodel import HostModel
from tinytrain.link import Link
from tinytrain.predict import predicted_class

from conftest import REFERENCE_MODELS

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or
                                shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc not installed")

VARIANT = {"mps2-an386": "_dsp", "mps3-an547": "_mve"}


@pytest.mark.parametrize("board", sorted(VARIANT))
@pytest.mark.parametrize("model", REFERENCE_MODELS)
def test_reference_inference_on_the_emulated_board_equals_the_host(tte_models, tmp_path, model, board):
    graph = load_model(tte_models / f"{model}.json")
    compiled = tinytrain.compile(graph, board=board)
    # every conv / depthwise / fused / dense layer calls the board's variant
    calls = [line.split("(")[0] for step in compiled.emission.forward for line in step["lines"]]
    weighted = [c for c in calls if "conv" in c or "fully_connected" in c]
    assert weighted and all(c.endswith(VARIANT[board]) for c in weighted), sorted(set(weighted))
    fw = tmp_path / "fw"
    emitted = project.emit_project(compiled, fw)
    built = project.build_project(fw)
    assert built["flash_bytes"] <= built["flash_limit"]
    if board == "mps3-an547" and model == "mcunet-5fps":
        assert emitted["memory"]["flash_bytes"] > 512 * 1024    # more than the ITCM holds
        assert built["flash_bytes"] > 512 * 1024

    x = np.random.default_rng(11).integers(-128, 128, size=(1, 128, 128, 3), dtype=np.int8)
    want = HostModel(graph, tmp_path / "host").run(x).reshape(1, -1)
    # MCUNet's 1000 classes take several frames: infer_many reads the rest of each output
    # before the next sample runs (tests/test_link_messages.py tests that with 6 samples)
    with emulator.boot(fw) as running, Link.open(running.url, timeout=5.0) as link:
        results = link.infer_many(x.reshape(1, -1))
    got = np.stack([r.outputs.reshape(-1) for r in results]).astype(np.int8)
    np.testing.assert_array_equal(got, want)
    assert [r.predicted for r in results] == predicted_class(want).tolist()
    assert len(np.unique(want)) > 20                      # not degenerate
    assert all(r.work > compiled.macs // 4 for r in results)     # a real 128x128 inference
