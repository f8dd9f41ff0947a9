"""int8 training ("real quantized graph"): int8 forward, fp32 gradients, QAS updates."""
import numpy as np
import pytest

from tinytrain.training.program import build_program
from tinytrain.training.simulate import Trainer

from graphs import cnn, mlp, quantize_graph

LR = 0.05


def int8_model(f=cnn, seed=0):
    g = f(seed)
    rng = np.random.default_rng(seed + 10)
    calib = rng.standard_normal((8,) + g.tensors["input"].shape).astype(np.float32)
    gq = quantize_graph(g, calib)
    x = calib[0]
    t = gq.tensors["input"]
    xq = np.clip(np.round(x / t.scale) + t.zero_point, -128, 127).astype(np.int8)
    return gq, xq


def test_classifier_update_is_the_qas_formula_exactly():
    g, xq = int8_model()
    tr = Trainer(build_program(g, "last:1", update="nearest"), lr=LR)
    w0, b0 = tr.params["fc.weight"].copy(), tr.params["fc.bias"].copy()
    vals = tr.forward(xq)
    # independent computation: real logits, softmax - onehot, outer product with the real input
    lt, xt = g.tensors["fc"], g.tensors["flatten"]
    z = (vals["fc"].astype(np.float64) - lt.zero_point) * lt.scale
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    dy = p.astype(np.float32)
    dy[0, 3] -= 1
    x = ((vals["flatten"].astype(np.float64) - xt.zero_point) * xt.scale).astype(np.float32)
    # the clamp mask: no gradient where the int8 logit sits on -128 / 127
    dy = np.where((vals["fc"] > -128) & (vals["fc"] < 127), dy, 0).astype(np.float32)
    gw = (dy.T.astype(np.float64) @ x.astype(np.float64)).astype(np.float32)
    s = g.tensors["fc.weight"].quant.scale.astype(np.float32)[:, None]
    step = (np.float32(LR) * (gw / s).astype(np.float32)).astype(np.float32)
    raw = w0.astype(np.float64) - step
    expect_w = np.clip(np.where(raw >= 0, np.floor(raw + 0.5), np.ceil(raw - 0.5)), -127, 127)
    res = tr.step(xq, 3)
    np.testing.assert_allclose(res.grads["fc.weight"], gw, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(tr.params["fc.weight"], expect_w.astype(np.int8))
    # the bias: step G_b / (s_W s_x), rounded, int32
    bs = g.tensors["fc.bias"].quant.scale.astype(np.float32)
    braw = b0.astype(np.float64) - (np.float32(LR) * (dy[0] / bs).astype(np.float32)).astype(np.float32)
    np.testing.assert_array_equal(tr.params["fc.bias"], np.where(braw >= 0, np.floor(braw + 0.5),
                                                                 np.ceil(braw - 0.5)).astype(np.int32))


def test_qas_step_equals_the_fp32_sgd_step_within_half_an_lsb():
    g, xq = int8_model()
    tr = Trainer(build_program(g, "full", update="nearest"), lr=LR)
    before = {k: v.copy() for k, v in tr.params.items()}
    res = tr.step(xq, 1)
    for name in ("conv1.weight", "conv2.weight", "fc.weight"):
        t = g.tensors[name]
        shape = [1] * t.data.ndim
        shape[t.quant.axis] = -1
        s = t.quant.scale.reshape(shape)
        moved = (tr.params[name].astype(np.float64) - before[name]) * s
        fp32_step = -LR * res.grads[name]
        unsaturated = np.abs(before[name].astype(np.float64) + fp32_step / s) < 127
        err = np.abs(moved - fp32_step)[unsaturated]
        assert np.all(err <= 0.5 * np.broadcast_to(s, moved.shape)[unsaturated] + 1e-9), name
    assert any(np.any(tr.params[n] != before[n]) for n in ("conv1.weight", "conv2.weight"))


def test_updates_saturate_instead_of_wrapping():
    g, xq = int8_model(mlp)
    tr = Trainer(build_program(g, "last:1"), lr=1e6)
    tr.step(xq, 0)
    w = tr.params["fc3.weight"]
    assert w.min() >= -127 and w.max() <= 127
    assert np.any(np.abs(w) == 127)


def test_fp32_shadow_keeps_sub_lsb_updates():
    g, xq = int8_model(mlp)
    tiny = 1e-5
    plain = Trainer(build_program(g, "last:1", update="nearest"), lr=tiny)
    shadow = Trainer(build_program(g, "last:1", shadow=True), lr=tiny)
    w0 = plain.params["fc3.weight"].copy()
    for _ in range(3):
        plain.step(xq, 0)
        shadow.step(xq, 0)
    np.testing.assert_array_equal(plain.params["fc3.weight"], w0)   # each update < 0.5 LSB: rounded away
    sh = shadow.shadow["fc3.weight"]
    assert np.any(sh != w0.astype(np.float32))                       # ... but the shadow accumulates them
    np.testing.assert_array_equal(shadow.params["fc3.weight"],
                                  np.where(sh >= 0, np.floor(sh + 0.5), np.ceil(sh - 0.5)).astype(np.int8))


def test_int8_training_lowers_the_loss():
    g, xq = int8_model()
    tr = Trainer(build_program(g, "full"), lr=0.02)
    first = tr.step(xq, 2).loss
    for _ in range(5):
        last = tr.step(xq, 2).loss
    assert last < 0.8 * first, (first, last)
