"""transpose_conv (tinytrain/ops/transpose_conv.py): int8 bit-exact with LiteRT's reference
TRANSPOSE_CONV on each branch of its kernel and Prepare (SAME / VALID padding computed on the
output size, strides below / equal to / above the kernel size, an output larger than the taps
reach, bias given or absent (LiteRT 2.x's optional 4th input), per-channel and per-tensor
weights, fused NONE / RELU / RELU6, input zero points at both ends), numpy and C; Keras
Conv2DTranspose through the real converter; float32 and the input gradient against
TensorFlow; training steps through the op (its weights frozen) equal to GradientTape and to
the simulation."""
import ctypes

import numpy as np
import pytest

import tinytrain
from tinytrain import refops
from tinytrain.frontends.tflite import load_tflite
from tinytrain.ops import unit
from tinytrain.ops.transpose_conv import transpose_conv_grad_input

import ckernels as ck
import real_models as rm
import tflite_models as tm
from graphs import GraphBuilder
from trainsteps import assert_int8_c_step_equals_simulation

# (H, W, Cin, Cout, (kh, kw), (sh, sw), padding, (OH, OW) or None for TensorFlow's size)
CASES = [
    (4, 5, 3, 4, (3, 3), (2, 2), "SAME", None),
    (3, 4, 2, 3, (3, 3), (2, 2), "VALID", None),
    (5, 5, 3, 2, (2, 2), (2, 2), "SAME", None),          # stride == kernel: no overlap
    (4, 3, 2, 5, (3, 2), (1, 1), "SAME", None),          # stride 1, non-square kernel
    (3, 3, 4, 3, (2, 2), (3, 3), "VALID", None),         # stride > kernel: rows of bias only
    (2, 6, 3, 2, (1, 1), (2, 3), "VALID", None),         # 1x1 kernel, unequal strides
    (4, 4, 2, 3, (3, 3), (2, 2), "VALID", (10, 10)),     # output beyond the taps' reach
    (5, 4, 3, 2, (4, 4), (2, 2), "SAME", (9, 7)),        # odd output of an even kernel
]


def _out_size(n, k, s, padding):
    return n * s if padding == "SAME" else (n - 1) * s + k


def _model(case, rng, *, per_channel=True, bias=True, act=0, in_zp=-5, float32=False):
    h, w, cin, cout, (kh, kw), (sh, sw), padding, out_hw = case
    oh, ow = out_hw or (_out_size(h, kh, sh, padding), _out_size(w, kw, sw, padding))
    weights = rng.integers(-127, 128, (cout, kh, kw, cin))
    if float32:
        f = dict(type="FLOAT32")
        inputs = [dict(shape=[4], type="INT32", data=[1, oh, ow, cout]),
                  dict(shape=weights.shape, data=weights * 0.01, **f), dict(shape=(1, h, w, cin), **f),
                  dict(shape=[cout], data=rng.normal(0, 0.5, cout), **f) if bias else None]
        out = dict(shape=(1, oh, ow, cout), **f)
    else:
        s_in, s_out = 0.02, 0.05 + 0.03 * rng.random()
        ws = (rng.uniform(0.002, 0.01, cout) if per_channel else np.array([0.006]))
        wq = (ws, np.zeros_like(ws, np.int64), 0)
        bq = ((s_in * ws).astype(np.float32), np.zeros(ws.size, np.int64), 0)
        inputs = [dict(shape=[4], type="INT32", data=[1, oh, ow, cout]),
                  dict(shape=weights.shape, type="INT8", q=wq, data=weights),
                  dict(shape=(1, h, w, cin), type="INT8", q=(s_in, in_zp)),
                  dict(shape=[cout], type="INT32", q=bq, data=rng.integers(-3000, 3000, cout)) if bias else None]
        out = dict(shape=(1, oh, ow, cout), type="INT8", q=(s_out, 7))
    opts = dict(padding=0 if padding == "SAME" else 1, strideH=sh, strideW=sw, fusedActivationFunction=act)
    if not bias:
        inputs = inputs[:3]
    return tm.op_tflite("TRANSPOSE_CONV", inputs, out, opts, version=4 if act else 3)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="transpose_conv*.c", build_dir=tmp_path_factory.mktemp("ck_tconv"))


def _c_forward(lib, g, x):
    op = g.ops[0]
    xt, w, b, y = (g.tensors[t] for t in (*op.inputs, *op.outputs))
    kh, kw = w.shape[1:3]
    out = np.zeros(y.shape, np.int8 if y.dtype == "int8" else np.float32)
    args = [ck.ptr(np.ascontiguousarray(x)), ctypes.byref(ck.dims(xt.shape)), ck.ptr(w.data), ck.ptr(b.data),
            kh, kw, ctypes.byref(ck.geom(op.attrs["stride"], op.attrs["pad"]))]
    if y.dtype == "int8":
        lib.tt_transpose_conv_s8(*args, ctypes.byref(ck.requant(unit(op.type).params(g, op))), ck.ptr(out),
                                 ctypes.byref(ck.dims(y.shape)))
    else:
        lib.tt_transpose_conv_f32(*args, {"none": 0, "relu": 1, "relu6": 2}[op.attrs["activation"]],
                                  ck.ptr(out), ctypes.byref(ck.dims(y.shape)))
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}k{c[4][0]}{c[4][1]}s{c[5][0]}{c[5][1]}{c[6]}"
                                             f"{'-out' if c[7] else ''}" for c in CASES])
def test_int8_equals_litert_on_each_geometry(lib, case):
    rng = np.random.default_rng(sum(case[:4]))
    data = _model(case, rng)
    interp = tm.reference_interpreter(data)
    g = load_tflite(data)
    x = rng.integers(-128, 128, (3,) + g.tensors[g.inputs[0]].shape[1:]).astype(np.int8)
    for xi in x:
        want = tm.invoke(interp, [xi[None]])
        got = refops.run_graph(g, {g.inputs[0]: xi[None]})[g.outputs[0]]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(_c_forward(lib, g, xi[None]), want)


@pytest.mark.parametrize("variant", [dict(per_channel=False), dict(bias=False), dict(act=1, in_zp=-128),
                                     dict(act=3, in_zp=127)],
                         ids=["per-tensor", "no-bias", "relu-zp-128", "relu6-zp127"])
def test_int8_branches_of_weights_bias_and_activation(lib, variant):
    for case in (CASES[0], CASES[4]):
        rng = np.random.default_rng(7)
        data = _model(case, rng, **variant)
        interp = tm.reference_interpreter(data)
        g = load_tflite(data)
        assert (g.tensors[g.ops[0].inputs[1]].quant.per_channel) == variant.get("per_channel", True)
        x = rng.integers(-128, 128, (2,) + g.tensors[g.inputs[0]].shape[1:]).astype(np.int8)
        for xi in x:
            want = tm.invoke(interp, [xi[None]])
            np.testing.assert_array_equal(refops.run_graph(g, {g.inputs[0]: xi[None]})[g.outputs[0]], want)
            np.testing.assert_array_equal(_c_forward(lib, g, xi[None]), want)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[6]], ids=["same-s2", "valid-s3", "bigger-out"])
def test_float_tflite_equals_litert(lib, case):
    rng = np.random.default_rng(11)
    data = _model(case, rng, float32=True)
    interp = tm.reference_interpreter(data)
    g = load_tflite(data)
    x = rng.standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    want = tm.invoke(interp, [x])
    np.testing.assert_allclose(refops.run_graph(g, {g.inputs[0]: x})[g.outputs[0]], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_c_forward(lib, g, x), want, rtol=1e-5, atol=1e-5)


def _keras_model():
    import keras
    keras.utils.set_random_seed(1)
    inp = keras.Input((5, 6, 3))
    h = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same", activation="relu")(inp)
    h = keras.layers.Conv2DTranspose(4, 2, strides=2, padding="valid", use_bias=False)(h)
    h = keras.layers.Conv2DTranspose(3, (3, 2), strides=(1, 2), padding="valid")(h)
    model = keras.Model(inp, h)
    rng = np.random.default_rng(2)
    for layer in model.layers:
        for v in layer.weights:
            if "bias" in v.path:
                v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
    return model


def test_keras_conv2d_transpose_converted_to_int8_runs_bit_exact():
    model = _keras_model()
    calib = np.random.default_rng(3).uniform(-1, 1, (32, 5, 6, 3)).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    interp = tm.reference_interpreter(data)
    assert tm.op_types(interp).count("TRANSPOSE_CONV") == 3
    compiled = tinytrain.compile(data)
    assert [op.type for op in compiled.graph.ops] == ["transpose_conv"] * 3
    x = np.random.default_rng(4).integers(-128, 128, (20, 1, 5, 6, 3)).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(compiled.run(x).reshape(want.shape), want)


def test_float_keras_conv2d_transpose_matches_tensorflow():
    model = _keras_model()
    x = np.random.default_rng(5).standard_normal((8, 5, 6, 3)).astype(np.float32)
    compiled = tinytrain.compile(model)
    np.testing.assert_allclose(compiled.run(x).reshape(8, -1), model.predict(x, verbose=0).reshape(8, -1),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,k,padding", [((2, 2), (3, 3), "SAME"), ((1, 2), (2, 3), "VALID"),
                                               ((3, 3), (2, 2), "VALID")])
def test_input_gradient_matches_tensorflow_and_the_c_kernel(lib, stride, k, padding):
    import tensorflow as tf
    rng = np.random.default_rng(6)
    h, w, cin, cout = 4, 5, 3, 2
    oh, ow = _out_size(h, k[0], stride[0], padding), _out_size(w, k[1], stride[1], padding)
    x = rng.standard_normal((1, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((cout, k[0], k[1], cin)).astype(np.float32)
    dy = rng.standard_normal((1, oh, ow, cout)).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.nn.conv2d_transpose(xt, tf.transpose(wt, [1, 2, 0, 3]), (1, oh, ow, cout), stride, padding)
    want = tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()
    from tinytrain.ops.transpose_conv import tflite_transpose_pad
    pt = tflite_transpose_pad(padding == "VALID", oh, k[0], stride[0], h)
    pl = tflite_transpose_pad(padding == "VALID", ow, k[1], stride[1], w)
    got = transpose_conv_grad_input(dy, wt, stride, (pt[0], pl[0]), (h, w))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    gx = np.full(x.shape, 0.5, np.float32)        # accumulate into what is there
    g = ck.geom(stride, (pt[0], pt[1], pl[0], pl[1]))
    lib.tt_transpose_conv_grad_input_f32(ck.ptr(dy), ctypes.byref(ck.dims(dy.shape)), ck.ptr(wt), k[0], k[1],
                                         ctypes.byref(g), 1, ck.ptr(gx), ctypes.byref(ck.dims(x.shape)))
    np.testing.assert_allclose(gx, want + 0.5, rtol=1e-5, atol=1e-5)
    wq = rng.integers(-127, 128, wt.shape).astype(np.int8)
    sc = ck.carray(rng.uniform(0.01, 0.05, cout), np.float32)
    lib.tt_transpose_conv_grad_input_s8(ck.ptr(dy), ctypes.byref(ck.dims(dy.shape)), ck.ptr(wq), ck.weight_quant(sc, 1),
                                        k[0], k[1], ctypes.byref(g), 0, ck.ptr(gx), ctypes.byref(ck.dims(x.shape)))
    real = wq.astype(np.float32) * sc[:, None, None, None]
    np.testing.assert_allclose(gx, transpose_conv_grad_input(dy, real, stride, (pt[0], pl[0]), (h, w)),
                               rtol=1e-5, atol=1e-5)


def _graph_with_transpose_conv():
    """conv -> transpose_conv (frozen weights, SAME, stride 2) -> conv -> gap -> dense."""
    from tinytrain.ir import Op, Tensor
    b = GraphBuilder("tconv", (1, 4, 4, 3), seed=8)
    b.conv("conv1", 4, act="relu")
    w = b._param("up.weight", (5, 3, 3, 4), 0.3)
    bias = b._param("up.bias", (5,), 0.1)
    out = b._out("up", (1, 8, 8, 5))
    b.ops.append(Op("up", "transpose_conv", [b.last, w, bias], [out],
                    {"stride": (2, 2), "pad": (0, 1, 0, 1), "activation": "relu"}))
    b.last = out
    b.conv("conv2", 4, stride=2, act="none")
    b.gap_flatten()
    b.dense("fc", 3)
    return b.build("tconv")


def _keras_with_transpose_conv():
    """conv -> transpose conv (SAME, stride 2; frozen in training) -> conv s2 -> gap -> dense."""
    import keras
    keras.utils.set_random_seed(8)
    inp = keras.Input((4, 4, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same", activation="relu", name="up")(h)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, name="fc")(h), name="tconv")


def test_float_training_step_through_transpose_conv_equals_gradient_tape(tmp_path):
    model = _keras_with_transpose_conv()
    m = tinytrain.compile(model, scheme="full", passes=False)
    assert "up" not in m.program.scheme.layers        # frozen: not a weighted layer
    x = np.random.default_rng(9).standard_normal((1, 4, 4, 3)).astype(np.float32)
    steps = rm.float_step_gradients(model, "full", x, 2, tmp_path)
    assert sorted(steps) == sorted(f"{n}.{k}" for n in ("conv1", "conv2", "fc") for k in ("weight", "bias"))
    for name, (got, want) in steps.items():
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=name)


def test_int8_training_step_through_transpose_conv_equals_the_simulation(tmp_path):
    g = _graph_with_transpose_conv()
    calib = np.random.default_rng(10).standard_normal((16, 1, 4, 4, 3)).astype(np.float32)
    assert_int8_c_step_equals_simulation(g, calib, "last:3", tmp_path)
