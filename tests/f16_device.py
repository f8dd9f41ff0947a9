"""An FP16 training graph trained over the serial link on an emulated board, against its numpy
simulation: every loss and every trained parameter the same bits (the op-group tests of issue
13: tests/test_fp16_shape.py, _binary, _act, _sum_mve)."""
from __future__ import annotations

import numpy as np

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
