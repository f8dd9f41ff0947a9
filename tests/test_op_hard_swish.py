"""hard_swish, the op added as one unit (tinytrain/ops/hard_swish.py): int8 bit-exact with
LiteRT's reference kernel on every branch of its fixed-point arithmetic (numpy and C), float32
and its gradient against TensorFlow, and a training step through it equal to the simulation."""
import ctypes

import numpy as np
import pytest

import tinytrain
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.ops.hard_swish import hard_swish_f32, hard_swish_grad, hard_swish_params, hard_swish_s8

import ckernels as ck
import real_models as rm
import tflite_models as tm
from graphs import GraphBuilder
from trainsteps import assert_int8_c_step_equals_simulation

ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)

# (input scale, zp, output scale, zp): reluish exponent > 0 / 0 / < 0, output exponent 0 and
# far below -16 (the int16 rounding's wrapped mask), saturation at both ends, zp extremes
QUANT_CASES = [
    ((0.05, 0), (0.04, -100)),          # common: reluish exponent > 0
    ((0.2, -128), (0.1, -60)),
    ((0.008, 5), (0.001, 10)),          # reluish exponent 0 / small scales
    ((0.001, 127), (0.0001, -128)),     # reluish exponent < 0
    ((0.5, 30), (0.004, 0)),            # output multiplier near 1 (exponent 0), saturating
    ((0.02, -3), (5.0, 2)),             # output exponent -14
    ((0.01, 3), (20.0, 1)),             # output exponent <= -16: the int16 mask wraps
    ((0.03, 64), (0.03, -128)),
]


def _litert(data: bytes, x: np.ndarray) -> np.ndarray:
    interp = tm.reference_interpreter(data)
    return tm.invoke(interp, [x])


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = ck.load_kernels(pattern="hard_swish*.c", build_dir=tmp_path_factory.mktemp("ck_hs"))
    return lib


class Params(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in ("input_zp", "output_zp", "reluish_multiplier",
                                              "reluish_exponent", "output_multiplier", "output_exponent")]


@pytest.mark.parametrize("in_q,out_q", QUANT_CASES)
def test_int8_equals_litert_on_every_input_value(lib, in_q, out_q):
    want = _litert(tm.unary_tflite("HARD_SWISH", ALL_INT8.shape, in_q, out_q), ALL_INT8)
    p = hard_swish_params(in_q[0], in_q[1], out_q[0], out_q[1])
    np.testing.assert_array_equal(hard_swish_s8(ALL_INT8, p), want)
    got = np.zeros(ALL_INT8.size, np.int8)
    x = np.ascontiguousarray(ALL_INT8.reshape(-1))
    lib.tt_hard_swish_s8(ck.ptr(x), x.size, ctypes.byref(Params(**p)), ck.ptr(got))
    np.testing.assert_array_equal(got, want.reshape(-1))


def test_the_cases_reach_every_branch():
    ps = [hard_swish_params(a[0], a[1], b[0], b[1]) for a, b in QUANT_CASES]
    exps = {p["reluish_exponent"] for p in ps}
    assert any(e > 0 for e in exps) and any(e == 0 for e in exps) and any(e < 0 for e in exps)
    assert any(p["output_exponent"] == 0 for p in ps) and any(p["output_exponent"] <= -16 for p in ps)


def _keras_model(activation_layer: bool):
    import keras
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 6, 3))
    if activation_layer:
        h = keras.layers.Conv2D(8, 3, padding="same")(inp)
        h = keras.layers.Activation("hard_swish")(h)
    else:
        h = keras.layers.Conv2D(8, 3, padding="same", activation="hard_swish")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(4)(h))


def test_keras_model_converted_to_int8_runs_bit_exact():
    model = _keras_model(activation_layer=True)
    calib = np.random.default_rng(0).uniform(-2, 2, (64, 6, 6, 3)).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    interp = tm.reference_interpreter(data)
    assert "HARD_SWISH" in tm.op_types(interp)
    compiled = tinytrain.compile(data)
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    x = np.random.default_rng(1).integers(-128, 128, (50,) + inp.shape[1:]).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi[None]]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(compiled.run(x), want)


@pytest.mark.parametrize("activation_layer", [True, False], ids=["Activation", "activation="])
def test_float_keras_model_matches_tensorflow(activation_layer):
    model = _keras_model(activation_layer)
    x = np.random.default_rng(2).uniform(-3, 3, (20, 6, 6, 3)).astype(np.float32)
    compiled = tinytrain.compile(model)
    assert any(op.type == "hard_swish" for op in compiled.graph.ops)
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_float_reference_and_gradient_match_tensorflow():
    import tensorflow as tf
    x = np.linspace(-5, 5, 1001).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.keras.activations.hard_swish(xt)
    np.testing.assert_allclose(hard_swish_f32(x), y.numpy(), rtol=1e-6, atol=1e-6)
    dy = np.random.default_rng(4).standard_normal(x.shape).astype(np.float32)
    want = tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()
    away = np.abs(np.abs(x) - 3) > 1e-3              # the kinks at +-3: one-sided derivatives
    np.testing.assert_allclose(hard_swish_grad(x, dy)[away], want[away], rtol=1e-5, atol=1e-6)


def _graph_with_hard_swish():
    b = GraphBuilder("hs", (1, 6, 6, 3), seed=5)
    b.conv("conv1", 6, act="none")
    b.unary("hs1", "hard_swish")
    b.conv("conv2", 4, act="none")
    b.gap_flatten()
    b.dense("fc", 3)
    return b.build("hs")


def _keras_with_hard_swish():
    import keras
    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(inp)
    h = keras.layers.Activation("hard_swish", name="hs1")(h)
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, name="fc")(h), name="hs")


def test_float_training_step_through_hard_swish_equals_gradient_tape(tmp_path):
    model = _keras_with_hard_swish()
    x = np.random.default_rng(6).standard_normal((1, 6, 6, 3)).astype(np.float32)
    steps = rm.float_step_gradients(model, "full", x, 1, tmp_path)
    assert sorted(steps) == sorted(f"{n}.{k}" for n in ("conv1", "conv2", "fc") for k in ("weight", "bias"))
    for name, (got, want) in steps.items():
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=name)


def test_int8_training_step_through_hard_swish_equals_the_simulation(tmp_path):
    g = _graph_with_hard_swish()
    calib = np.random.default_rng(7).standard_normal((16, 1, 6, 6, 3)).astype(np.float32)
    assert_int8_c_step_equals_simulation(g, calib, "last:3", tmp_path)
