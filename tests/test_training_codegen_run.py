"""The generated training C, run on the host (HostTrainer):
float mode == TensorFlow GradientTape (rtol 1e-4), int8 mode == the numpy QAS simulation,
sparse schemes == the full gradient restricted to the trained subset."""
import json

import numpy as np
import pytest

from tinytrain.training.host import HostTrainer
from tinytrain.training.program import build_program
from tinytrain.training.simulate import Trainer

from graphs import MODELS, int8_graph, int8_inputs, tf_forward

tf = pytest.importorskip("tensorflow")

LR, MU, WD = 0.05, 0.9, 0.01
SPARSE = {"bias_update_last_n": 2, "weight_update": [{"conv_index": 1, "input_channel_ratio": 0.5}]}


def start(graph, scheme, out_dir, **kw) -> HostTrainer:
    """The host build of the training step (a C that fails to compile or link fails the test)."""
    return HostTrainer.build(graph, scheme, out_dir, **kw)


def tf_grads(graph, x, label, names):
    variables = {t.name: tf.Variable(t.data) for t in graph.constants()}
    with tf.GradientTape() as tape:
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits([label], tf_forward(graph, x, variables))
    grads = tape.gradient(loss, [variables[n] for n in names])
    return float(loss[0]), {n: g.numpy() for n, g in zip(names, grads)}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_float_c_step_equals_gradient_tape(tmp_path, model):
    g = MODELS[model]()
    x = np.random.default_rng(1).standard_normal(g.tensors["input"].shape).astype(np.float32)
    names = [t.name for t in g.constants()]
    loss_tf, grads = tf_grads(g, x, 2, names)
    with start(g, "full", tmp_path, lr=LR, reorder=False) as ht:
        before = ht.params()
        assert set(before) == set(names)
        loss, _ = ht.train_step(x, 2)
        after = ht.params()
    assert loss == pytest.approx(loss_tf, rel=1e-5)
    for n in names:
        np.testing.assert_allclose(after[n], before[n] - LR * grads[n], rtol=1e-4, atol=1e-6, err_msg=n)
        # the step itself (the gradient as the device applied it), where it is not lost in rounding
        np.testing.assert_allclose((before[n] - after[n]) / LR, grads[n], rtol=1e-4, atol=2e-5, err_msg=n)


def test_float_momentum_and_weight_decay_match_keras_sgd_over_two_steps(tmp_path):
    g = MODELS["cnn"]()
    xs = np.random.default_rng(2).standard_normal((2,) + g.tensors["input"].shape).astype(np.float32)
    variables = {t.name: tf.Variable(t.data) for t in g.constants()}
    opt = tf.keras.optimizers.SGD(learning_rate=LR, momentum=MU)
    for i in range(2):
        with tf.GradientTape() as tape:
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits([i], tf_forward(g, xs[i], variables))
            loss = loss + sum(0.5 * WD * tf.reduce_sum(v * v) for v in variables.values())
        vs = list(variables.values())
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
    with start(g, "full", tmp_path, momentum=True, reorder=False) as ht:
        ht.set_hparams(LR, MU, WD)
        ht.train_many(xs, [0, 1])
        after = ht.params()
    for n, v in variables.items():
        np.testing.assert_allclose(after[n], v.numpy(), rtol=1e-4, atol=1e-6, err_msg=n)


def assert_within_one_lsb(c, sim, name, min_exact=0.98):
    """int8/int32 parameters: the C kernels accumulate gradients in float32, numpy in float64,
    so an update that lands within rounding distance of .5 may round the other way: at most
    1 LSB apart, and nearly all exact."""
    d = np.abs(c.astype(np.int64) - sim.astype(np.int64))
    assert d.max() <= 1, name
    assert (d == 0).mean() >= min_exact, (name, (d == 0).mean())


@pytest.mark.parametrize("model", ["mlp", "cnn", "residual", "dwsep"])
@pytest.mark.parametrize("opt", ["nearest", "shadow+momentum", "residual+momentum", "stochastic"])
def test_int8_c_steps_equal_the_numpy_qas_simulation(tmp_path, model, opt):
    g = int8_graph(model)
    mode, mom = opt.split("+")[0], opt.endswith("+momentum")
    xs = int8_inputs(g, 3, 7)
    labels = [1, 0, 2]
    tr = Trainer(build_program(g, "full", momentum=mom, update=mode), lr=LR, momentum=MU if mom else 0.0)
    sim_losses = [tr.step(x, y).loss for x, y in zip(xs, labels)]
    with start(g, "full", tmp_path, momentum=mom, update=mode, reorder=False) as ht:
        ht.set_hparams(LR, MU if mom else 0.0, 0.0)
        res = ht.train_many(xs, labels)
        after = ht.params()
        out_c = ht.infer(xs)
    np.testing.assert_allclose([l for l, _ in res], sim_losses, rtol=1e-4)
    for name, v in after.items():
        assert_within_one_lsb(v, tr.params[name], name)
    # after training, inference of the device equals the simulation's, bit for bit, when
    # the parameters agree (they do for most seeds; compare on the device's parameters)
    tr.params.update(after)
    np.testing.assert_array_equal(out_c, np.stack([tr.infer(x).reshape(-1) for x in xs]))


def test_sparse_c_step_equals_the_full_gradient_restricted(tmp_path):
    g = MODELS["residual"]()
    x = np.random.default_rng(3).standard_normal(g.tensors["input"].shape).astype(np.float32)
    names = [t.name for t in g.constants()]
    _, grads = tf_grads(g, x, 1, names)
    scheme = tmp_path / "s.json"
    scheme.write_text(json.dumps(SPARSE))
    with start(g, str(scheme), tmp_path / "c", lr=LR, reorder=False) as ht:
        before = ht.params()
        ht.train_step(x, 1)
        after = ht.params()
    assert set(after) == {"expand.weight", "dw.bias", "project.bias", "fc.weight", "fc.bias"}
    w0 = g.tensors["expand.weight"].data
    np.testing.assert_allclose(after["expand.weight"][..., :4], w0[..., :4] - LR * grads["expand.weight"][..., :4],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(after["expand.weight"][..., 4:], w0[..., 4:])
    for n in ("dw.bias", "project.bias", "fc.weight", "fc.bias"):
        np.testing.assert_allclose(after[n], before[n] - LR * grads[n], rtol=1e-4, atol=1e-6, err_msg=n)


def test_reordered_sparse_int8_step_equals_the_simulation_of_the_reordered_graph(tmp_path):
    g = int8_graph("residual")
    scheme = tmp_path / "s.json"
    scheme.write_text(json.dumps(SPARSE))
    xs = int8_inputs(g, 2, 11)
    with start(g, str(scheme), tmp_path / "c", lr=LR) as ht:
        prog = ht.program
        res = ht.train_many(xs, [3, 4])
        after = ht.params()
    assert prog.graph is not g          # the residual stream was permuted
    tr = Trainer(build_program(prog.graph, prog.scheme), lr=LR)
    losses = [tr.step(x, y).loss for x, y in zip(xs, [3, 4])]
    np.testing.assert_allclose([l for l, _ in res], losses, rtol=1e-4)
    for name, v in after.items():
        assert_within_one_lsb(v, tr.params[name], name)


def test_params_write_and_read_back(tmp_path):
    g = MODELS["mlp"]()
    with start(g, "last:1", tmp_path, reorder=False) as ht:
        p = ht.params()
        new = {k: (v + 1).astype(v.dtype) for k, v in p.items()}
        ht.set_params(new)
        got = ht.params()
        assert ht.trainable_bytes == sum(v.nbytes for v in p.values())
    for k in p:
        np.testing.assert_array_equal(got[k], new[k])


@pytest.mark.parametrize("int8", [False, True])
def test_listed_channel_fallback_c_step_equals_the_simulation(tmp_path, int8):
    """When reordering cannot absorb a permutation (here: channels of the graph input), the
    update trains an explicit channel list; device C and host simulation must agree."""
    from tinytrain.training.reorder import reorder_for_scheme
    g = int8_graph("cnn") if int8 else MODELS["cnn"]()
    w = g.tensors["conv1.weight"].data
    w[..., 2] = np.clip(w[..., 2].astype(np.int32) * 3, -127, 127) if int8 else w[..., 2] * 10
    scheme = tmp_path / "s.json"
    scheme.write_text(json.dumps({"bias_update_last_n": 1,
                                  "weight_update": [{"conv_index": 0, "input_channel_ratio": 0.34}]}))
    g2, bound = reorder_for_scheme(g, str(scheme))
    assert bound.layers["conv1"].channel_index == [2]
    xs = int8_inputs(g2, 3, 5) if int8 else [np.random.default_rng(s).standard_normal(
        g2.tensors["input"].shape).astype(np.float32) for s in range(3)]
    labels = [1, 2, 0]
    tr = Trainer(build_program(g2, bound), lr=LR)
    losses = [tr.step(x, y).loss for x, y in zip(xs, labels)]
    with start(g2, bound, tmp_path / "c", lr=LR, reorder=False) as ht:
        res = ht.train_many(xs, labels)
        after = ht.params()
    np.testing.assert_allclose([l for l, _ in res], losses, rtol=1e-4)
    w0 = g2.tensors["conv1.weight"].data
    assert not np.array_equal(after["conv1.weight"][..., 2], w0[..., 2]), "the listed channel trained"
    np.testing.assert_array_equal(after["conv1.weight"][..., :2], w0[..., :2])
    for name, v in after.items():
        if int8:
            assert_within_one_lsb(v, tr.params[name], name)
        else:
            np.testing.assert_allclose(v, tr.params[name], rtol=1e-4, atol=1e-6, err_msg=name)
