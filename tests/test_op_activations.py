"""logistic, tanh and leaky_relu (tinytrain/ops/): int8 bit-exact with LiteRT's reference
kernels on every input value (numpy and C) over many quantizations, float32 and the gradients
against TensorFlow, the float C kernels equal to their numpy references bit for bit.

LiteRT's reference LOGISTIC / TANH (BUILTIN_REF, ai-edge-litert 2.3) are table lookups filled
by LUTPopulate in float32 with expf / tanhf: the table is the one branch; the cases vary the
input scale (saturating and fine), the zero points, and tanh's output quantization."""
import ctypes

import numpy as np
import pytest

from tinytrain import refops
from tinytrain.errors import UnsupportedError
from tinytrain.frontends.tflite import load_tflite
from tinytrain.ops import unit
from tinytrain.ops.leaky_relu import leaky_relu_f32, leaky_relu_grad, leaky_relu_params
from tinytrain.ops.logistic import logistic_f32
from tinytrain.ops.tanh import tanh_f32

import ckernels as ck
import tflite_models as tm

ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)

LUT_CASES = {   # op -> [(input scale, zp), (output scale, zp)]
    "LOGISTIC": [((0.05, 0), (1 / 256, -128)), ((0.1, -128), (1 / 256, -128)), ((0.0039, 127), (1 / 256, -128)),
                 ((0.2, 30), (1 / 256, 0)), ((0.0123, -5), (1 / 256, -100)), ((1.0, 0), (1 / 256, -128))],
    "TANH": [((0.05, 0), (1 / 128, 0)), ((0.1, -128), (1 / 128, 0)), ((0.003, 127), (1 / 128, 0)),
             ((0.02, 10), (0.01, -3)), ((0.5, -60), (1 / 256, -128)), ((0.0078, 0), (0.008, 5))],
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    names = ("lut_s8.c", "leaky_relu_s8.c", "logistic_f32.c", "tanh_f32.c", "leaky_relu_f32.c")
    extra = [p for name in names[1:] for p in ck.kernel_sources(name)]
    return ck.load_kernels(extra, pattern=names[0], build_dir=tmp_path_factory.mktemp("ck_act"))


def _check_unary(lib, op, in_q, out_q, options=None):
    """LiteRT == numpy reference == C kernel on every int8 input."""
    if options is None:
        data = tm.unary_tflite(op, ALL_INT8.shape, in_q, out_q)
    else:
        data = tm.op_tflite(op, [dict(shape=ALL_INT8.shape, q=in_q)], dict(shape=ALL_INT8.shape, q=out_q), options)
    want = tm.invoke(tm.reference_interpreter(data), [ALL_INT8])
    g = load_tflite(data)
    (op_ir,) = g.ops
    np.testing.assert_array_equal(refops.run_graph(g, {g.inputs[0]: ALL_INT8})[g.outputs[0]], want)
    got = np.zeros(ALL_INT8.size, np.int8)
    x = np.ascontiguousarray(ALL_INT8.reshape(-1))
    if op_ir.type == "leaky_relu":
        lib.tt_leaky_relu_s8(ck.ptr(x), x.size, ck.struct("tt_leaky_relu_params", unit("leaky_relu").params(g, op_ir)),
                             ck.ptr(got))
    else:
        table = np.ascontiguousarray(unit(op_ir.type).table(g, op_ir))
        lib.tt_lut_s8(ck.ptr(x), x.size, ck.ptr(table), ck.ptr(got))
    np.testing.assert_array_equal(got, want.reshape(-1))
    return want


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
def test_lut_int8_equals_litert_on_every_input(lib, op):
    for in_q, out_q in LUT_CASES[op]:
        want = _check_unary(lib, op, in_q, out_q)
        assert len(np.unique(want)) > 4                          # not a degenerate table


def test_logistic_output_scale_other_than_1_256_is_refused_as_litert_does():
    data = tm.unary_tflite("LOGISTIC", (1, 4), (0.05, 0), (1 / 200, -128))
    with pytest.raises(RuntimeError):
        tm.reference_interpreter(data)                 # LiteRT's Prepare refuses it
    with pytest.raises(UnsupportedError, match="output scale"):
        load_tflite(data)


LEAKY_CASES = [  # alpha, input quant, output quant
    (0.2, (0.05, 0), (0.04, -20)),
    (0.01, (0.1, -128), (0.2, -128)),        # identity multiplier < 1, tiny alpha
    (1.5, (0.05, 10), (0.02, 3)),            # alpha > 1, multipliers > 1
    (-0.3, (0.02, 5), (0.03, -7)),           # negative alpha: |multiplier| and a negation
    (0.0, (0.05, 0), (0.05, 0)),             # alpha 0: a relu
]


@pytest.mark.parametrize("k", range(len(LEAKY_CASES)))
def test_leaky_relu_int8_equals_litert_on_every_input(lib, k):
    alpha, in_q, out_q = LEAKY_CASES[k]
    _check_unary(lib, "LEAKY_RELU", in_q, out_q, {"alpha": alpha})


def test_leaky_cases_reach_every_branch():
    ps = [leaky_relu_params(i[0], i[1], o[0], o[1], a) for a, i, o in LEAKY_CASES]
    assert {p["alpha_negative"] for p in ps} == {0, 1}
    assert min(p["identity_shift"] for p in ps) <= 0 < max(p["identity_shift"] for p in ps)
    assert any(p["alpha_mult"] == 0 for p in ps)


X = np.concatenate([np.linspace(-12, 12, 2001), [-1e-4, 1e-5, 0.0, 0.124999, 0.125, -0.125, 40.0, -90.0]]).astype(np.float32)


def test_float_references_and_gradients_match_tensorflow_and_the_c_kernels(lib):
    import tensorflow as tf
    for name, ref, tf_fn in (("logistic", logistic_f32, tf.sigmoid), ("tanh", tanh_f32, tf.tanh),
                             ("leaky_relu", lambda v: leaky_relu_f32(v, 0.2), lambda v: tf.nn.leaky_relu(v, 0.2))):
        want = tf_fn(tf.constant(X)).numpy()
        np.testing.assert_allclose(ref(X), want, rtol=2e-6, atol=1e-7, err_msg=name)
        got = np.zeros_like(X)
        if name == "leaky_relu":
            ck.declare(lib, "tt_leaky_relu_f32", ctypes.c_void_p, ctypes.c_int32, ctypes.c_float, ctypes.c_void_p)(
                X.ctypes.data, X.size, 0.2, got.ctypes.data)
        else:
            getattr(lib, f"tt_{name}_f32")(ck.ptr(X), X.size, ck.ptr(got))
        np.testing.assert_array_equal(got, ref(X), err_msg=name)
    # the gradients against GradientTape (one test: TensorFlow is imported once)
    dy = np.random.default_rng(3).standard_normal(X.shape).astype(np.float32)
    xt = tf.constant(X)
    for name, tf_fn in (("logistic", tf.sigmoid), ("tanh", tf.tanh), ("leaky_relu", lambda v: tf.nn.leaky_relu(v, 0.2))):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf_fn(xt)
        want = tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()
        if name == "leaky_relu":
            got = leaky_relu_grad(X, dy, 0.2)
        else:
            u = unit(name)
            got = dy * u.grad_from_y(u.f32(X))
        # near +-1 tanh's 1 - y^2 magnifies last-ulp differences of y (TensorFlow's tanh is
        # exactly +-1 beyond |x| ~ 8): an absolute tolerance of a few ulp of 1
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=4e-6, err_msg=name)
