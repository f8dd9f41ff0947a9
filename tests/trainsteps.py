"""The int8 training-step check the op tests share: the C step (the units' emit_backward and
their kernels, built for the host) against the numpy simulation of the same program.

The simulation computes in float64/float32 numpy where the C computes in float32 in the
kernels' order, so an update that lands on a rounding boundary may differ by one step:
allowed on at most 2% of a tensor's values, never more than one step (the device and the
host build, both C, are compared bit for bit elsewhere)."""
from __future__ import annotations

import numpy as np

import tinytrain
from graphs import quantize_graph


def assert_int8_c_step_equals_simulation(graph, calib: np.ndarray, scheme: str, tmp_path,
                                         labels=(0, 1, 2, 1), lr: float = 0.05):
    """Quantize `graph` with `calib` (N, 1, H, W, C), compile `scheme` with nearest rounding,
    train the first len(labels) calibration samples through the C step and the simulation."""
    gq = quantize_graph(graph, calib)
    m = tinytrain.compile(gq, scheme=scheme, lr=lr, update="nearest", passes=False)
    inp = gq.tensors[gq.inputs[0]]
    labels = list(labels)
    x = np.clip(np.round(calib[:len(labels)] / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    sim = m.simulator()
    with m.host_trainer(tmp_path) as ht:
        losses = [loss for loss, _ in ht.train_many(x, labels)]
        params = ht.params()
    np.testing.assert_allclose(losses, [sim.step(xi, y).loss for xi, y in zip(x, labels)], rtol=1e-5)
    for name, value in params.items():
        d = np.abs(value.astype(np.int64) - sim.params[name].astype(np.int64))
        assert d.max() <= 1 and (d == 0).mean() >= 0.98, name
    return gq
