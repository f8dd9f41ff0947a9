"""FP16 code on the emulated boards against its numpy models (the op-group tests of issue 13:
tests/test_fp16_ops.py, _shape, _binary, _act, _sum_mve): kernel cases byte for byte, and a
training graph trained over the serial link: every loss and trained parameter the same bits."""
from __future__ import annotations

import numpy as np

import pytest

from kernel_harness import have_tools, run_cases
from tinytrain import emulator
from tinytrain.link import Link


def assert_device_equals_simulation(m, x: np.ndarray, y: np.ndarray, build_dir, timeout: float = 30.0):
    """Build m's firmware in build_dir, boot it, train on (x, y) (one sample a row, flat) over
    the link; the numpy simulation trains on the same samples. Returns (simulator, the device's
    parameters) for further checks."""
    shape = m.graph.tensors[m.graph.inputs[0]].shape
    m.build_project(build_dir)
    with emulator.boot(build_dir) as running, Link.open(running.url, timeout=timeout) as link:
        results = link.train_many(x, y)
        device = link.read_params()
    sim = m.simulator()
    losses = np.array([sim.step(x[i].reshape(shape), int(y[i])).loss for i in range(len(x))], np.float32)
    np.testing.assert_array_equal(np.array([r.loss for r in results], np.float32).view(np.uint32),
                                  losses.view(np.uint32))
    assert set(device) and all(name in sim.params for name in device)
    for name, got in device.items():
        want = sim.params[name]
        np.testing.assert_array_equal(np.asarray(got).reshape(want.shape).view(np.uint16), want.view(np.uint16),
                                      err_msg=name)
    return sim, device


def assert_kernel_cases_equal_models(board: str, cases: list, build_dir, kernels: list, min_helium: int) -> list:
    """Run the kernel cases on board (the Helium variants only on mps3-an547): each kernel's
    output equals its numpy model, its guard bytes are intact, and every Helium variant stores
    the portable kernel's bits; on mps3-an547 at least min_helium variants ran. Returns the results."""
    if not have_tools():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm missing")
    if board != "mps3-an547":             # no Helium: the portable kernels alone
        for c in cases:
            c.var = None
    results = run_cases(board, cases, build_dir, kernels=kernels)
    for r in results:
        assert r.ref_expected, r.name
        assert r.guards_ok, r.name
        assert r.identical is not False, r.name          # a Helium variant: the same bits
    if board == "mps3-an547":
        helium = [r for r in results if r.var_instr is not None]
        assert len(helium) >= min_helium and all(r.identical for r in helium)
    return results
