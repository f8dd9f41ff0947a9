"""The digits CNN trained in FP16 on the emulated boards, over the serial link, equals the
numpy reference bit for bit (losses, predictions, every trained parameter): on the Cortex-M55
(mps3-an547) with the Helium _f16_mve kernels in conv2d, depthwise and the classifier, on the Cortex-M4F
(mps2-an386) with the portable ones (FP16 storage computed in FP32). The float .keras model
is compiled to FP16 directly; its input and output stay float32 on the link."""
import shutil

import numpy as np
import pytest

from conftest import ROOT
import tinytrain
from tinytrain import emulator
from tinytrain.link import Link

DIGITS = ROOT / "examples" / "digits"
N = 60

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc not installed")


@pytest.mark.parametrize("board,precision,scheme,scale", [
    ("mps3-an547", "fp16", "full", 1.0),
    ("mps3-an547", "mixed", "last:2", "dynamic"),
    ("mps2-an386", "fp16", "full", 1.0),
])
def test_fp16_digits_on_device_equals_numpy_reference(board, precision, scheme, scale, tmp_path):
    z = np.load(DIGITS / "digits_test.npz")
    x, y = z["x"][:N].reshape(N, -1).astype(np.float32), z["y"][:N]
    compiled = tinytrain.compile(str(DIGITS / "digits_cnn.keras"), scheme=scheme, board=board, precision=precision,
                                 loss_scale=scale, lr=0.05)
    helium = [op.name for op in compiled.graph.ops if op.attrs.get("f16_variant") == "mve"]
    assert bool(helium) == (board == "mps3-an547")
    compiled.build_project(tmp_path / "fw")
    with emulator.boot(tmp_path / "fw") as running, Link.open(running.url, timeout=20.0) as link:
        results = link.train_many(x, y)
        device = link.read_params()
    sim = compiled.simulator()
    shape = compiled.graph.tensors[compiled.graph.inputs[0]].shape
    losses = np.array([sim.step(x[i].reshape(shape), int(y[i])).loss for i in range(N)], np.float32)
    np.testing.assert_array_equal(np.array([r.loss for r in results], np.float32).view(np.uint32),
                                  losses.view(np.uint32))
    for name, value in sim.params.items():
        if name in device:
            got = np.asarray(device[name]).reshape(value.shape)
            assert got.dtype == np.float16
            np.testing.assert_array_equal(got.view(np.uint16), value.view(np.uint16), err_msg=name)
    assert set(device) and all(n in sim.params for n in device)


def test_fp16_weights_pull_and_push_as_fp16_or_fp32_without_loss(tmp_path):
    """The native board over the link: an FP16 model's weights read as float16 or float32 (the
    same values), written back from float32 arrays exactly; a float32 value that is no half is
    refused, naming the parameter, and nothing is written."""
    from tinytrain.errors import TinyTrainError
    compiled = tinytrain.compile(str(DIGITS / "digits_cnn.keras"), scheme="last:2", board="native",
                                 precision="fp16", lr=0.05)
    compiled.build_project(tmp_path / "fw")
    z = np.load(DIGITS / "digits_test.npz")
    x, y = z["x"][:8].reshape(8, -1).astype(np.float32), z["y"][:8]
    with emulator.boot(tmp_path / "fw") as running, Link.open(running.url, timeout=20.0) as link:
        link.train_many(x, y)
        h = link.read_params()
        f = link.read_params(as_float32=True)
        for name in h:
            assert h[name].dtype == np.float16 and f[name].dtype == np.float32
            np.testing.assert_array_equal(f[name], h[name].astype(np.float32))
        pushed = {n: -v for n, v in f.items()}                              # negation is exact
        link.write_params(pushed)
        back = link.read_params()
        for name, v in pushed.items():
            np.testing.assert_array_equal(back[name].astype(np.float32), v)
        bad = dict(pushed)
        name = sorted(bad)[0]
        bad[name] = bad[name].copy()
        bad[name][0] = np.float32(0.1)                                      # not a half
        with pytest.raises(TinyTrainError, match=name):
            link.write_params(bad)
        after = link.read_params()
        for n in back:
            np.testing.assert_array_equal(after[n].view(np.uint16), back[n].view(np.uint16))
