"""The FP16 training step's gradients against TensorFlow's FP32 GradientTape (the op-group
tests of issue 13: tests/test_fp16_ops.py, _shape, _binary, _act): the same graph, its weights
rounded to half as the FP16 build holds them, one step of the numpy simulation (bit for bit the
device's) beside TensorFlow's gradients of the same loss."""
from __future__ import annotations

import numpy as np
import pytest

from graphs import tf_forward


def tape(g, m, x: np.ndarray, label: int, select=None):
    """(TensorFlow's loss, its gradient of every constant of g) at the half-rounded weights of
    the compiled FP16 model m, on the input x; select: the maximum / minimum branches to take."""
    tf = pytest.importorskip("tensorflow")
    half = {t.name: m.graph.tensors[t.name].data.astype(np.float32) for t in g.constants()}
    variables = {n: tf.Variable(v) for n, v in half.items()}
    with tf.GradientTape() as t:
        logits = tf_forward(g, x.astype(np.float32), variables, **({"select": select} if select else {}))
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits([label], logits)
    names = list(variables)
    grads = t.gradient(loss, [variables[n] for n in names])
    return float(loss[0]), {n: (v.numpy() if v is not None else None) for n, v in zip(names, grads)}


def assert_step_matches_tape(g, m, x: np.ndarray, label: int, trained: list[str] | None = None, *,
                             tol: float = 0.02, select=None):
    """One simulated FP16 step of m on (x, label): its loss within 0.5% of TensorFlow's, the
    tensors it trains exactly `trained` (when given), and each of their gradients within `tol`
    of the largest value of TensorFlow's. Returns the step's result."""
    loss, want = tape(g, m, x, label, select)
    res = m.simulator().step(x.astype(np.float32), label)
    assert res.loss == pytest.approx(loss, rel=5e-3)
    if trained is not None:
        assert sorted(res.grads) == sorted(trained)
    for name, got in res.grads.items():
        ref = want[name]
        np.testing.assert_allclose(got, ref, atol=tol * max(float(np.abs(ref).max()), 1e-3), err_msg=name)
    return res
