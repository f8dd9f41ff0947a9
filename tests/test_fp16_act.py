"""FP16 forms of the activations leaky relu, prelu, hard swish, logistic and tanh (issue 13):
each portable _f16 kernel and Helium variant equals its numpy model (the op units'
*_f16 functions) byte for byte on the emulated Cortex-M55 and Cortex-M4F, with zeros of
both signs, subnormals, infinities, NaNs, tails of lanes, broadcasts and accumulating
gradients; a training graph holding them all, input gradients stored and accumulated: the
host build equals the numpy reference step after step (fp16, mixed, dynamic loss scale), the
emulated boards too (the Cortex-M55 with the Helium variants, hard swish's modelled as it
computes them), and its FP16 gradients are within 1% of TensorFlow's FP32 GradientTape
(measured: 0.11% of each tensor's largest gradient at worst); a Keras model of the five too
(0.09%); and the int8 form of the graph with an FP16 head of them."""
import shutil

import numpy as np
import pytest

import tinytrain

import f16_cases_act
import real_models as rm
from f16_device import assert_device_equals_simulation, assert_kernel_cases_equal_models
from f16_tape import assert_step_matches_tape
from graphs import GraphBuilder, quantize_graph
from test_fp16 import assert_half_params_equal, run_both

ACT_TYPES = {"leaky_relu", "prelu", "hard_swish", "logistic", "tanh"}


def act_net(seed=0):
    """conv -> leaky relu (+ its input: the input gradient accumulates) -> conv -> prelu (per
    channel alpha) -> hard swish (+ its input) -> conv -> logistic + tanh of the same tensor
    (tanh's input gradient stored, logistic's accumulated) -> conv -> gap -> dense."""
    rng = np.random.default_rng(seed + 200)
    b = GraphBuilder("f16act", (1, 6, 6, 3), seed)
    c1 = b.conv("conv1", 8, act="none")
    lr = b.unary("leaky", "leaky_relu", alpha=0.1)
    b.add("res1", lr, c1)
    b.conv("conv2", 8, act="none")
    p = b.binary("prelu", "prelu", b.last, b.const("prelu.alpha", 0.25 + 0.2 * rng.standard_normal(8)))
    hs = b.unary("hswish", "hard_swish")
    b.add("res2", hs, p)
    c3 = b.conv("conv3", 8, act="none")
    s = b.unary("sig", "logistic")
    b.last = c3
    t = b.unary("tanh", "tanh")
    b.add("gate", s, t)
    b.conv("conv4", 8, act="none")
    b.gap_flatten()
    b.dense("fc", 5)
    return b.build("f16act")


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_kernels_equal_their_numpy_model_on_the_board(tmp_path, board):
    cases = f16_cases_act.op_cases(helium=board == "mps3-an547")
    results = assert_kernel_cases_equal_models(board, cases, tmp_path, f16_cases_act.kernels(), min_helium=20)
    assert len(results) == len(cases)
    if board == "mps3-an547":
        assert any(r.name.startswith("hard swish_mve") for r in results)


@pytest.mark.parametrize("precision,scale", [("fp16", 1.0), ("mixed", 64.0), ("fp16", "dynamic")])
def test_host_build_equals_numpy_reference_bit_for_bit(precision, scale):
    g = act_net()
    m = tinytrain.compile(g, scheme="full", precision=precision, loss_scale=scale, lr=0.05, passes=False)
    assert ACT_TYPES <= {op.type for op in m.graph.ops}
    for t in ACT_TYPES:
        op = next(op for op in m.graph.ops if op.type == t)
        assert m.graph.tensors[op.outputs[0]].dtype == "float16", t
    rng = np.random.default_rng(3)
    xs = (2 * rng.standard_normal((10, 1, 6, 6, 3))).astype(np.float32)
    labels = rng.integers(0, 5, 10)
    sim, params = run_both(m, xs, labels)          # equal losses, step after step
    assert_half_params_equal(m, sim, params)


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("board,precision,scale", [("mps3-an547", "fp16", 1.0), ("mps3-an547", "mixed", "dynamic"),
                                                  ("mps2-an386", "mixed", 64.0)])
def test_device_training_equals_numpy_reference(board, precision, scale, tmp_path):
    """Trained over the serial link on the emulated board: the losses and every trained
    parameter equal the simulation's bits (the dynamic scale overflows once, at the 4th step:
    infinities through the Helium kernels, the step skipped on both)."""
    n = 12
    compiled = tinytrain.compile(act_net(), scheme="full", board=board, precision=precision, loss_scale=scale,
                                 lr=0.05)
    variants = {op.type: op.attrs.get("f16_variant") for op in compiled.graph.ops}
    assert (variants["hard_swish"] == "mve") == (board == "mps3-an547")
    kernels = " ".join(line for step in compiled.emission.forward for line in step["lines"])
    assert ("tt_leaky_relu_f16_mve(" in kernels) == (board == "mps3-an547")
    rng = np.random.default_rng(4)
    shape = compiled.graph.tensors[compiled.graph.inputs[0]].shape
    x = (2 * rng.standard_normal((n, int(np.prod(shape))))).astype(np.float32)
    y = rng.integers(0, 5, n)
    assert_device_equals_simulation(compiled, x, y, tmp_path / "fw", timeout=20.0)


def test_the_graph_accumulates_activation_input_gradients():
    """The graph runs the activations' input-gradient kernels storing and accumulating."""
    m = tinytrain.compile(act_net(), scheme="full", precision="fp16", passes=False)
    acc = {s.op: any(s.accumulate.values()) for s in m.program.backward}
    assert acc["leaky"] and acc["hswish"] and acc["sig"], acc
    assert not acc["prelu"] and not acc["tanh"], acc


def test_fp16_gradients_against_gradient_tape():
    """The FP16 step's weight gradients against TensorFlow's FP32 gradients of the same
    (half-rounded) weights: within 1% of the largest gradient of each tensor."""
    g = act_net()
    m = tinytrain.compile(g, scheme="full", precision="fp16", lr=0.0, passes=False)
    x = (2 * np.random.default_rng(5).standard_normal(g.tensors[g.inputs[0]].shape)).astype(np.float16)
    trained = [t.name for t in g.constants() if t.name.endswith((".weight", ".bias"))]
    assert_step_matches_tape(g, m, x, 1, trained, tol=0.01)     # prelu's alpha is not trained (as in float32)


def _keras_act_model():
    """The five activations as Keras layers and activations (PReLU with one alpha a channel)."""
    import keras
    keras.utils.set_random_seed(7)
    inp = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    h = keras.layers.LeakyReLU(negative_slope=0.1, name="leaky")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(h)
    h = keras.layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.1, 0.4), shared_axes=[1, 2],
                           name="prelu")(h)
    h = keras.layers.Activation("hard_swish", name="hswish")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="sigmoid", name="conv3")(h)
    h = keras.layers.Activation("tanh", name="tanh")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(5, name="fc")(h), name="act")


def test_keras_model_in_fp16_against_gradient_tape():
    """A Keras model holding the five activations compiles to FP16 (PReLU's alpha a constant,
    as in float32 training): the host build equals the numpy reference, and the FP16 step's
    gradients are within 1% (of each tensor's largest) of GradientTape's on the float32 model."""
    pytest.importorskip("tensorflow")
    model = _keras_act_model()
    m = tinytrain.compile(model, scheme="full", precision="fp16", lr=0.05, passes=False)
    assert ACT_TYPES <= {op.type for op in m.graph.ops if m.graph.tensors[op.outputs[0]].dtype == "float16"}
    rng = np.random.default_rng(9)
    x = rng.uniform(-2, 2, (1, 6, 6, 3)).astype(np.float16).astype(np.float32)
    want = rm.gradient_tape(model, x, 2)
    res = m.simulator().step(x, 2)
    names = rm.trained(m)
    assert sorted(res.grads) == sorted(names) and not any("prelu" in n for n in names)
    for name in names:
        ref = rm.ir_layout(want[rm.keras_variable_of(model, name)], res.grads[name].shape)
        np.testing.assert_allclose(res.grads[name], ref, atol=0.01 * float(np.abs(ref).max()), err_msg=name)
    xs = rng.uniform(-2, 2, (6, 1, 6, 6, 3)).astype(np.float32)
    sim, params = run_both(m, xs, rng.integers(0, 5, 6))
    assert_half_params_equal(m, sim, params)


@pytest.mark.parametrize("scheme,half_types", [("full", ACT_TYPES), ("last:3", {"logistic", "tanh"})])
def test_int8_model_with_an_fp16_head_of_activations(scheme, half_types):
    """The int8 form of the graph with an FP16 head: the head's activations (prelu's int8 alpha
    as its real values, rounded to half) train on the host build with the reference's bits;
    the frozen ones stay int8."""
    calib = np.random.default_rng(0).standard_normal((16, 1, 6, 6, 3)).astype(np.float32)
    m = tinytrain.compile(quantize_graph(act_net(), calib), scheme=scheme, precision="fp16", lr=0.05,
                          passes=False)
    dtypes = {op.type: m.graph.tensors[op.outputs[0]].dtype for op in m.graph.ops if op.type in ACT_TYPES}
    assert {t for t, dt in dtypes.items() if dt == "float16"} == half_types
    assert all(dt == "int8" for t, dt in dtypes.items() if t not in half_types)
    rng = np.random.default_rng(3)
    xs = rng.integers(-128, 128, (6, 1, 6, 6, 3)).astype(np.int8)
    sim, params = run_both(m, xs, rng.integers(0, 5, 6))
    assert_half_params_equal(m, sim, params)
