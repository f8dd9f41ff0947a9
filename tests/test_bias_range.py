"""Trained int32 biases stay within +-2^30 (tinytrain/training/qas.py explains the bound):
there the int8 kernels' accumulators cannot overflow, so the reference kernels (which add
the bias with saturation, as their SIMD variants do) and LiteRT (a plain add) give the same
bytes. Before, a bias that training pushed to the int32 limit made a _dsp kernel (which then
folded the bias into its running sums) wrap where the reference saturated: the device's
forward pass left the host's. The variants are now exact at any bias
(tests/test_kernels_simd.py, "int32 limits"); the range still keeps LiteRT's arithmetic."""
import re

import numpy as np
import pytest

import tinytrain
from tinytrain.errors import UnsupportedError
from tinytrain.ir import Graph, Op, QuantParams, Tensor
from tinytrain.resources import firmware_dir
from tinytrain.training import qas
from tinytrain.training.program import build_program
from tinytrain.training.simulate import Trainer

import ckernels as ck
import simd_cases as sc
from graphs import int8_graph, int8_inputs

HUGE_LR = 1e9      # a step or two takes every trained bias to the range's limit


def test_the_c_bias_range_is_the_numpy_twins():
    text = (firmware_dir() / "include" / "tt_update_rules.h").read_text()
    got = {name: int(v) for name, v in re.findall(r"#define (TT_QAS_BIAS_M(?:IN|AX)) \(?(-?\d+)\)?", text)}
    assert (got["TT_QAS_BIAS_MIN"], got["TT_QAS_BIAS_MAX"]) == qas.INT_RANGE["int32"] == (-2 ** 30, 2 ** 30)
    # the bound: at the limit, K taps of the largest |x - zp| * |w| still fit an int32
    assert qas.BIAS_LIMIT + qas.BIAS_ACC_PER_TAP * qas.MAX_BIAS_TAPS <= 2 ** 31 - 1
    assert qas.BIAS_LIMIT + qas.BIAS_ACC_PER_TAP * (qas.MAX_BIAS_TAPS + 1) > 2 ** 31 - 1


def test_a_huge_step_takes_the_bias_to_the_range_not_the_int32_limit(tmp_path):
    """The numpy simulation and the C kernels (host build) both stop at +-2^30."""
    g = int8_graph("mlp")
    xs, labels = int8_inputs(g, 2, 5), [3, 1]
    tr = Trainer(build_program(g, "bias-only:2", update="nearest"), lr=HUGE_LR)
    for x, y in zip(xs, labels):
        tr.step(x, y)
    m = tinytrain.compile(g, scheme="bias-only:2", board="native", lr=HUGE_LR, update="nearest")
    with m.host_trainer(tmp_path) as host:
        host.train_many(xs, labels)
        c_params = host.params()
    biases = [n for n in c_params if n.endswith(".bias")]
    assert biases
    for name in biases:
        b = c_params[name].astype(np.int64)
        assert b.min() >= -2 ** 30 and b.max() <= 2 ** 30, name
        np.testing.assert_array_equal(b, tr.params[name], err_msg=name)
    assert any(np.abs(c_params[n]).max() == 2 ** 30 for n in biases)


@pytest.mark.parametrize("update", ["nearest", "stochastic", "residual", "shadow"])
def test_dsp_forward_equals_the_reference_after_biases_reach_the_limit(tmp_path, update):
    """A training step compiled for the Cortex-M4 (its forward through the _dsp kernels, which
    fold the bias into their sums) built for the host: losses, predictions and parameters
    equal the reference kernels' build after the biases were pushed to the limit. Failed
    while biases could reach INT32_MAX (the _dsp sums wrapped, the reference saturated)."""
    g = int8_graph("cnn")
    xs, labels = int8_inputs(g, 4, 9), [1, 4, 2, 7]
    out = {}
    for board in ("native", "mps2-an386"):
        m = tinytrain.compile(g, scheme="bias-only:3", board=board, lr=HUGE_LR, update=update)
        assert any(f.endswith("_dsp") for f in m.emission.em.functions) == (board != "native")
        with m.host_trainer(tmp_path / board) as host:
            steps = host.train_many(xs, labels)
            out[board] = (steps, host.infer(xs), host.params())
    (steps, preds, params), (want_steps, want_preds, want) = out["mps2-an386"], out["native"]
    for name, value in want.items():
        np.testing.assert_array_equal(params[name], value, err_msg=name)
    np.testing.assert_array_equal(preds, want_preds)
    np.testing.assert_array_equal(np.array(steps), np.array(want_steps))     # (loss, prediction); NaN == NaN
    assert any(np.abs(v).max() == 2 ** 30 for n, v in want.items() if n.endswith(".bias"))


@pytest.mark.parametrize("bias", [2 ** 30, -2 ** 30])
def test_kernels_agree_at_the_limit_with_the_largest_allowed_layer(bias):
    """A fully connected layer of MAX_BIAS_TAPS inputs, every product at its extreme (x - zp =
    255 * sign, w = -128), bias at the range's limit: the reference, the _dsp variant and the
    numpy reference (LiteRT's arithmetic, a plain add) give the same bytes."""
    rng = np.random.default_rng(1)
    n = qas.MAX_BIAS_TAPS
    layer = sc.fc_layer(rng, n, 2, extreme=-128 if bias > 0 else 127)
    layer.bias = np.full(2, bias, np.int32)
    layer.q["shift"] = np.full(2, -24, np.int32)          # acc ~2^31 -> the int8 range
    lib = ck.load_kernels(pattern="*.c")
    want = layer.expected()
    acc = int(bias) + int(np.sum((layer.x.astype(np.int64) - layer.q["in_zp"]) * layer.w[0].astype(np.int64)))
    assert abs(acc) <= 2 ** 31 - 1 and abs(acc) > 2 ** 31 - 2 ** 20      # at the edge, inside
    np.testing.assert_array_equal(layer.run_host(lib, None), want)
    np.testing.assert_array_equal(layer.run_host(lib, "dsp"), want)


def test_training_the_bias_of_a_layer_too_wide_for_the_range_is_refused():
    n_in = qas.MAX_BIAS_TAPS + 1
    g = Graph("wide", {"x": Tensor("x", (1, n_in), "int8", QuantParams.per_tensor(0.1, 0)),
                       "fc.weight": Tensor("fc.weight", (2, n_in), "int8", QuantParams.per_tensor(0.01, 0),
                                           np.ones((2, n_in), np.int8)),
                       "fc.bias": Tensor("fc.bias", (2,), "int32", None, np.zeros(2, np.int32)),
                       "y": Tensor("y", (1, 2), "int8", QuantParams.per_tensor(0.5, 0))},
              [Op("fc", "fully_connected", ["x", "fc.weight", "fc.bias"], ["y"], {"activation": "none"})],
              ["x"], ["y"])
    with pytest.raises(UnsupportedError, match="fc.*32,897 weights per output"):
        qas.check_trainable_bias(g, g.ops[0])
    small = Graph("ok", g.tensors | {"fc.weight": Tensor("fc.weight", (2, n_in - 1), "int8")}, g.ops, ["x"], ["y"])
    qas.check_trainable_bias(small, small.ops[0])
