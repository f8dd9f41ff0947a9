"""The main job (examples/digits_online): a device learns digits 5-9 online.

On the QEMU Cortex-M4F and Cortex-M55 (their `_dsp` / `_mve` kernel variants) and on the
native board: held-out accuracy on the new classes
rises from chance to at least 80%, and the parameters the device learned equal, bit for
bit, those of the host build of the same generated C fed the same samples in the same
order (the host simulation)."""
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "examples" / "digits_online"))
import ondevice  # noqa: E402



@pytest.fixture(scope="module")
def prepared():
    return ondevice.prepare(verbose=False)


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547", "native"])
def test_device_learns_new_classes_like_the_host_simulation(board, prepared, tmp_path):
    result = ondevice.run(board, tmp_path / "fw", verbose=False, prepared=prepared)
    before, after = result["before"], result["after"]
    # New classes were never seen: chance or worse before, at least 80% after.
    assert before["new"] <= 0.2, before
    assert after["new"] >= 0.8, after
    assert after["all"] > before["all"] + 0.3, (before, after)
    assert result["device_steps"] == result["trained_samples"] == len(result["stream"][1]) * result["epochs"]

    # the QEMU boards run their optimised int8 kernels, forward and training (the host
    # simulation: the reference ones)
    variant = {"mps2-an386": "_dsp", "mps3-an547": "_mve"}.get(board)
    weighted = {f for f in result["compiled"].emission.em.functions if "conv" in f or "fully_connected" in f}
    if variant:
        assert {"tt_conv2d_s8" + variant, "tt_fully_connected_update_weight_s8" + variant} <= weighted, weighted
        assert all(f.endswith(variant) for f in weighted), weighted

    xs, ys = result["stream"]
    compiled = result["compiled"]   # the host build of the very same compiled C, or on the
    if board == "mps3-an547":       # Cortex-M55 (Helium kernels do not run on the host) the model compiled for the host
        compiled, _ = ondevice.compile_training(prepared.model, prepared.data, tmp_path / "native", "native")
    with compiled.host_trainer(tmp_path / "host") as host:
        for _ in range(result["epochs"]):
            host.train_many(xs, ys)
        want = host.params()
    got = result["params"]
    assert set(got) == set(want)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name].reshape(value.shape), value, err_msg=name)
    # The learned parameters really moved away from the compiled ones.
    initial = result["graph"].tensors
    assert any(not np.array_equal(initial[n].data, v) for n, v in want.items())
