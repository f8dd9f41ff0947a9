"""Training through the elementwise ops: a small graph with every one of them in the trained part
(constant operands of mul/add/minimum/prelu, squeeze-excite's broadcast mul of two activations,
a mul of a tensor by itself, sub, maximum, minimum, logistic, tanh, leaky_relu, prelu,
concatenation): the numpy VJPs and the C backward kernels.
  float32: the simulation's gradients and the C step's updated parameters equal GradientTape's
           (rtol 1e-4);
  int8:    the C step (host build) equals the numpy simulation step for step."""
import numpy as np

import tinytrain
from tinytrain.training.program import build_program
from tinytrain.training.simulate import Trainer

from graphs import GraphBuilder, quantize_graph, tf_forward
from trainsteps import assert_int8_c_step_equals_simulation


def _graph():
    b = GraphBuilder("ew", (1, 6, 6, 3), seed=21)
    c1 = b.conv("conv1", 6, act="none")
    m = b.binary("bn_mul", "mul", c1, b.const("bn_scale", [0.5, 1.5, -1.0, 2.0, 0.7, 1.1]))
    a = b.binary("bn_add", "add", m, b.const("bn_shift", [0.1, -0.2, 0.3, 0.0, -0.5, 0.2]))
    lr = b.unary("lrelu", "leaky_relu", alpha=0.2)
    pr = b.binary("prelu", "prelu", lr, b.const("alpha", np.linspace(-0.5, 0.5, 6).reshape(1, 1, 6)))
    c2 = b.conv("conv2", 6, act="none")
    se = b.unary("se_pool", "global_avg_pool", (1, 1, 1, 6))
    gate = b.unary("gate", "logistic")
    se_mul = b.binary("se_mul", "mul", pr, gate)
    b.last = c2
    th = b.unary("tanh", "tanh")
    sq = b.binary("square", "mul", th, th)
    d = b.binary("diff", "sub", se_mul, sq)
    mx = b.binary("max", "maximum", d, c1)
    mn = b.binary("min", "minimum", mx, b.const("cap", 0.8))
    b.concat("cat", [mn, c2])
    b.conv("conv3", 4, act="relu")
    b.gap_flatten()
    b.dense("fc", 3)
    return b.build("ew")


def test_float_gradients_and_c_step_equal_gradient_tape(tmp_path):
    import tensorflow as tf
    g = _graph()
    x = np.random.default_rng(6).standard_normal((1, 6, 6, 3)).astype(np.float32)
    trained = {t for op in g.ops if op.type in ("conv2d", "fully_connected") for t in op.inputs[1:]}
    variables = {t.name: tf.Variable(t.data) for t in g.constants()}
    with tf.GradientTape() as tape:
        logits = tf_forward(g, x, variables)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits([2], logits)
    grads = dict(zip(variables, tape.gradient(loss, list(variables.values()))))
    # the numpy simulation (the units' VJPs)
    res = Trainer(build_program(g, "full"), lr=0.1).step(x, 2)
    for name in trained:
        np.testing.assert_allclose(res.grads[name], grads[name].numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    # the C step (the units' emit_backward and their kernels)
    lr = 0.1
    with tinytrain.compile(g, scheme="full", lr=lr, passes=False).host_trainer(tmp_path) as ht:
        ht.train_step(x[0], 2)
        after = ht.params()
    for name in trained:
        np.testing.assert_allclose(after[name], variables[name].numpy() - lr * grads[name].numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=name)


def test_int8_c_step_equals_the_simulation(tmp_path):
    g = _graph()
    calib = np.random.default_rng(7).standard_normal((16, 1, 6, 6, 3)).astype(np.float32)
    assert_int8_c_step_equals_simulation(g, calib, "full", tmp_path)


def _se_graph():
    """conv -> per-channel mul/add (batch norm) -> prelu -> squeeze-excite gate -> a one-channel
    spatial gate -> the conv whose input channels a sparse scheme trains."""
    b = GraphBuilder("se", (1, 5, 5, 3), seed=31)
    c1 = b.conv("conv1", 6, act="none")
    m = b.binary("bn_mul", "mul", c1, b.const("bn_scale", np.linspace(0.5, 2.0, 6)))
    a = b.binary("bn_add", "add", m, b.const("bn_shift", np.linspace(-0.3, 0.3, 6)))
    pr = b.binary("prelu", "prelu", a, b.const("alpha", np.linspace(-0.2, 0.4, 6).reshape(1, 1, 6)))
    b.unary("se_pool", "global_avg_pool", (1, 1, 1, 6))
    b.conv("se_conv", 6, k=1, pad=0, act="none")
    gate = b.unary("gate", "logistic")
    se = b.binary("se_mul", "mul", pr, gate)
    b.last = c1
    one = b.conv("spatial", 1, k=1, pad=0, act="none")        # (1, 5, 5, 1): broadcast along channels
    b.binary("spatial_mul", "mul", se, one)
    b.conv("conv2", 8, act="relu")
    b.gap_flatten()
    b.dense("fc", 3)
    return b.build("se")


def test_channel_reordering_goes_through_the_elementwise_ops():
    """A sparse update of conv2's input channels: the permutation is absorbed by conv1, the
    per-channel constants, prelu's alpha and the squeeze-excite conv (not by the one-channel
    gate), and the graph computes the same function (int8: bit for bit)."""
    from tinytrain.training.reorder import input_channel_importance, reorder_for_scheme
    from tinytrain.training.scheme import bind_scheme
    g = _se_graph()
    for int8 in (False, True):
        calib = np.random.default_rng(8).standard_normal((8, 1, 5, 5, 3)).astype(np.float32)
        gg = quantize_graph(g, calib) if int8 else g
        s = bind_scheme("last:2", gg)
        s.layers["conv2"].in_channels = 3
        g2, s2 = reorder_for_scheme(gg, s)
        assert s2.layers["conv2"].channel_index is None
        op = next(o for o in g2.ops if o.name == "conv2")
        imp = input_channel_importance(g2, op)
        assert imp[:3].min() >= imp[3:].max()
        assert not np.array_equal(g2.tensors["bn_scale"].data, gg.tensors["bn_scale"].data)
        # the one-channel gate's conv follows on its input channels only
        w0, w2 = gg.tensors["spatial.weight"].data, g2.tensors["spatial.weight"].data
        assert w2.shape == w0.shape and sorted(w2.reshape(-1)) == sorted(w0.reshape(-1))
        inp = gg.tensors["input"]
        xs = calib[:, 0]
        if int8:
            xs = np.clip(np.round(xs / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
        out = [np.stack([Trainer(build_program(h, "full")).infer(x) for x in xs]) for h in (gg, g2)]
        if int8:
            np.testing.assert_array_equal(out[1], out[0])
        else:
            np.testing.assert_allclose(out[1], out[0], rtol=1e-5, atol=1e-6)
