"""FP16 forms of add / sub (broadcast), average pooling, the global mean and an in-graph softmax
(issue 13's coverage): each portable _f16 kernel (and add's Helium variant) equals its numpy
model (tinytrain/ops/f16.py) byte for byte on the emulated Cortex-M55 and Cortex-M4F; a
training graph holding them all: the host build equals the numpy reference step after step,
and its FP16 gradients are within 2% of TensorFlow's FP32 GradientTape; a final softmax stays
float32 after the output's cast; an op with no float16 form is refused naming the layer."""
import numpy as np
import pytest

import tinytrain
from tinytrain.errors import UnsupportedError
from tinytrain.ops import unit

import f16_cases
from f16_device import assert_kernel_cases_equal_models
from f16_tape import assert_step_matches_tape
from graphs import GraphBuilder
from test_fp16 import assert_half_params_equal, run_both


def ops_net(seed=0, final_softmax=False):
    """conv -> zero pad -> conv -> residual add (relu) -> + per-channel constant -> 3x3 average
    pool (overlapping, padded) -> softmax over channels -> conv -> (x - conv) -> relu6 + the
    mean of (x - conv) (a broadcast activation) -> 2x2 average pool -> global mean -> dense
    (-> softmax)."""
    rng = np.random.default_rng(seed + 100)
    b = GraphBuilder("f16ops", (1, 6, 6, 3), seed)
    b.conv("conv1", 8, act="relu")
    c1 = b.last
    b.unary("zpad", "pad", (1, 8, 8, 8), pad=(1, 1, 1, 1))
    b.conv("conv2", 8, pad=0, act="none")
    b.add("res", c1, b.last, act="relu")
    b.binary("shifted", "add", b.last, b.const("shift", 0.5 * rng.standard_normal(8)), act="none")
    b.pool("avg", "avg", k=3, stride=1, pad=(1, 1, 1, 1))
    b.unary("attn", "softmax", beta=1.0)
    s = b.last
    b.conv("conv3", 8, act="none")
    b.binary("diff", "sub", s, b.last, act="none")
    d = b.last
    r = b.unary("clip", "relu6")          # standalone: its input's gradient accumulates (se_pool)
    b.last = d
    b.unary("se_pool", "global_avg_pool", (1, 1, 1, 8))
    b.binary("se", "add", r, b.last, act="relu")
    b.pool("avg2", "avg", k=2, stride=2)
    b.unary("gap", "global_avg_pool", (1, 1, 1, 8))
    b.unary("flatten", "reshape", (1, 8))
    b.dense("fc", 5)
    if final_softmax:
        b.unary("probs", "softmax", beta=1.0)
    return b.build("f16ops")


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_kernels_equal_their_numpy_model_on_the_board(tmp_path, board):
    assert_kernel_cases_equal_models(board, f16_cases.op_cases(), tmp_path, f16_cases.kernels(), min_helium=4)


@pytest.mark.parametrize("precision,scale,final_softmax", [("fp16", 1.0, False), ("mixed", 64.0, True),
                                                           ("fp16", "dynamic", True)])
def test_host_build_equals_numpy_reference_bit_for_bit(precision, scale, final_softmax):
    g = ops_net(final_softmax=final_softmax)
    m = tinytrain.compile(g, scheme="full", precision=precision, loss_scale=scale, lr=0.05, passes=False)
    types = {op.type for op in m.graph.ops}
    assert {"add", "sub", "avg_pool2d", "global_avg_pool", "softmax", "pad", "relu6"} <= types
    if final_softmax:      # the probabilities stay float32: the loss reads the float32 logits
        probs = m.graph.producer(m.graph.outputs[0])
        assert probs.type == "softmax" and m.graph.tensors[probs.inputs[0]].dtype == "float32"
        assert m.graph.tensors[m.program.loss_step.logits].dtype == "float32"
    assert m.graph.tensors["attn"].dtype == "float16"
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((10, 1, 6, 6, 3)).astype(np.float32)
    labels = rng.integers(0, 5, 10)
    sim, params = run_both(m, xs, labels)          # equal losses, step after step
    assert_half_params_equal(m, sim, params)


def test_fp16_gradients_against_gradient_tape():
    """The FP16 step's weight gradients against TensorFlow's FP32 gradients of the same
    (half-rounded) weights: within 2% of the largest gradient of each tensor."""
    g = ops_net()
    m = tinytrain.compile(g, scheme="full", precision="fp16", lr=0.0, passes=False)
    x = np.random.default_rng(5).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float16)
    trained = [t.name for t in g.constants() if t.name != "shift"]
    assert_step_matches_tape(g, m, x, 1, trained)


def test_ops_without_a_float16_form_are_refused_naming_the_layer(monkeypatch):
    # mul has a float16 form (tests/test_fp16_binary.py); switched off here, it stands for an op
    # without one (the unit's flag is what precision.to_float16 reads)
    monkeypatch.setattr(type(unit("mul")), "float16", False)
    b = GraphBuilder("mulnet", (1, 4, 4, 3), 0)
    b.conv("conv1", 4, act="relu")
    c = b.last
    b.conv("conv2", 4, act="none")
    b.binary("gate", "mul", c, b.last)
    b.unary("gap", "global_avg_pool", (1, 1, 1, 4))
    b.unary("flatten", "reshape", (1, 4))
    b.dense("fc", 3)
    with pytest.raises(UnsupportedError, match="gate.*mul in float16"):
        tinytrain.compile(b.build("mulnet"), scheme="full", precision="fp16")
    monkeypatch.undo()
    b = GraphBuilder("selfadd", (1, 4, 4, 3), 0)
    b.conv("conv1", 4, act="relu")
    b.add("twice", b.last, b.last)
    b.unary("gap", "global_avg_pool", (1, 1, 1, 4))
    b.unary("flatten", "reshape", (1, 4))
    b.dense("fc", 3)
    with pytest.raises(UnsupportedError, match="twice.*with itself"):
        tinytrain.compile(b.build("selfadd"), scheme="full", precision="fp16")
