"""Float training step of the numpy simulation == TensorFlow GradientTape (rtol 1e-4)."""
import numpy as np
import pytest

from tinytrain.training.program import build_program
from tinytrain.training.simulate import Trainer

from graphs import MODELS, tf_forward

tf = pytest.importorskip("tensorflow")

LR, MU, WD = 0.05, 0.9, 0.01


def tf_step(graph, x, label, trained: list[str]):
    variables = {t.name: tf.Variable(t.data) for t in graph.constants()}
    with tf.GradientTape() as tape:
        logits = tf_forward(graph, x, variables)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits([label], logits)
    grads = tape.gradient(loss, [variables[n] for n in trained])
    return float(loss[0]), dict(zip(trained, [g.numpy() for g in grads]))


@pytest.mark.parametrize("model", sorted(MODELS))
def test_full_update_matches_gradient_tape(model):
    g = MODELS[model]()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(g.tensors["input"].shape).astype(np.float32)
    prog = build_program(g, "full")
    trained = [t.name for t in g.constants()]
    loss_tf, grads_tf = tf_step(g, x, 2, trained)
    tr = Trainer(prog, lr=LR)
    before = {k: v.copy() for k, v in tr.params.items()}
    res = tr.step(x, 2)
    assert res.loss == pytest.approx(loss_tf, rel=1e-5)
    assert set(res.grads) == set(trained)
    for name in trained:
        np.testing.assert_allclose(res.grads[name], grads_tf[name], rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(tr.params[name], before[name] - LR * grads_tf[name], rtol=1e-4, atol=1e-6)


def test_momentum_and_weight_decay_match_keras_sgd_over_two_steps():
    g = MODELS["cnn"]()
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((2,) + g.tensors["input"].shape).astype(np.float32)
    tr = Trainer(build_program(g, "full", momentum=True), lr=LR, momentum=MU, weight_decay=WD)
    variables = {t.name: tf.Variable(t.data) for t in g.constants()}
    opt = tf.keras.optimizers.SGD(learning_rate=LR, momentum=MU)
    for i in range(2):
        tr.step(xs[i], i)
        with tf.GradientTape() as tape:
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits([i], tf_forward(g, xs[i], variables))
            # weight decay as an L2 term: d/dw (wd/2 |w|^2) = wd * w
            loss = loss + sum(0.5 * WD * tf.reduce_sum(v * v) for v in variables.values())
        vs = list(variables.values())
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
    for name, v in variables.items():
        np.testing.assert_allclose(tr.params[name], v.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_sparse_scheme_matches_full_gradients_restricted():
    g = MODELS["residual"]()
    x = np.random.default_rng(3).standard_normal(g.tensors["input"].shape).astype(np.float32)
    full = Trainer(build_program(g, "full"), lr=LR).step(x, 1)
    import json, tempfile, os
    spec = {"bias_update_last_n": 2, "weight_update": [{"conv_index": 1, "input_channel_ratio": 0.5}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        prog = build_program(g, f.name)
    finally:
        os.unlink(f.name)
    sparse = Trainer(prog, lr=LR).step(x, 1)
    assert set(sparse.grads) == {"expand.weight", "dw.bias", "project.bias", "fc.weight", "fc.bias"}
    np.testing.assert_allclose(sparse.grads["expand.weight"], full.grads["expand.weight"][..., :4], rtol=1e-5)
    for n in ("dw.bias", "project.bias", "fc.weight", "fc.bias"):
        np.testing.assert_allclose(sparse.grads[n], full.grads[n], rtol=1e-5)
