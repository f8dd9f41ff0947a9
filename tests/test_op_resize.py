"""resize_nearest and resize_bilinear (tinytrain/ops/resize.py): int8 and float32 bit-exact
with LiteRT's reference RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR on each branch (align_corners,
half_pixel_centers, both or neither; up- and down-sampling, integer and fractional ratios, an
output or input of size 1; bilinear int8: negative source coordinates clamped at the first
pixel, the upper bound clamped at the last, rounding of negative and positive sums), numpy and
C; the converter's nearest UpSampling2D / UpSampling1D (RESHAPE + TILE pairs) imported as one
op; Keras float models and the VJPs against TensorFlow; training steps through both."""
import ctypes

import numpy as np
import pytest

import tinytrain
from tinytrain import refops
from tinytrain.errors import UnsupportedError
from tinytrain.frontends.tflite import load_tflite
from tinytrain.ops import unit
from tinytrain.ops.resize import bilinear_axis_s8, resize_bilinear_grad, resize_nearest_grad

import ckernels as ck
import real_models as rm
import tflite_models as tm
from graphs import GraphBuilder
from trainsteps import assert_int8_c_step_equals_simulation

# (H, W, OH, OW): x2 up, fractional up, down, to 1x1, from a single row
SIZES = [(4, 5, 8, 10), (4, 5, 7, 9), (7, 9, 3, 4), (5, 5, 1, 1), (1, 3, 4, 6)]
FLAGS = [(False, False), (True, False), (False, True), (True, True)]     # (align_corners, half_pixel)
C = 3


def _model(op, size, align, half, float32=False):
    h, w, oh, ow = size
    act = dict(type="FLOAT32") if float32 else dict(type="INT8", q=(0.05, -3))
    return tm.op_tflite(op, [dict(shape=(1, h, w, C), **act), dict(shape=[2], type="INT32", data=[oh, ow])],
                        dict(shape=(1, oh, ow, C), **act), dict(alignCorners=align, halfPixelCenters=half), version=3)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="resize*.c", build_dir=tmp_path_factory.mktemp("ck_resize"))


def _c_forward(lib, g, x):
    op = g.ops[0]
    u = unit(op.type)
    xt, yt = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    int8 = xt.dtype == "int8"
    out = np.zeros(yt.shape, np.int8 if int8 else np.float32)
    x = np.ascontiguousarray(x)
    if op.type == "resize_nearest":
        rows, cols = (ck.carray(t, np.int32) for t in u.tables(g, op))
        fn = lib.tt_resize_nearest_s8 if int8 else lib.tt_resize_nearest_f32
        fn(ck.ptr(x), ctypes.byref(ck.dims(xt.shape)), ck.ptr(rows), ck.ptr(cols), ck.ptr(out),
           ctypes.byref(ck.dims(yt.shape)))
        return out
    arrays = []
    for lo, hi, fr in u.tables(g, op, int8):
        arrays += [ck.carray(np.concatenate([lo, hi]), np.int32), ck.carray(fr, np.int32 if int8 else np.float32)]
    fn = lib.tt_resize_bilinear_s8 if int8 else lib.tt_resize_bilinear_f32
    fn(ck.ptr(x), ctypes.byref(ck.dims(xt.shape)), *[ck.ptr(a) for a in arrays], ck.ptr(out),
       ctypes.byref(ck.dims(yt.shape)))
    return out


def _check_against_litert(lib, data, rng, float32):
    interp = tm.reference_interpreter(data)
    g = load_tflite(data)
    shape = g.tensors[g.inputs[0]].shape
    for _ in range(3):
        x = (rng.standard_normal(shape).astype(np.float32) if float32
             else rng.integers(-128, 128, shape).astype(np.int8))
        want = tm.invoke(interp, [x])
        np.testing.assert_array_equal(refops.run_graph(g, {g.inputs[0]: x})[g.outputs[0]], want)
        np.testing.assert_array_equal(_c_forward(lib, g, x), want)


@pytest.mark.parametrize("float32", [False, True], ids=["int8", "float32"])
@pytest.mark.parametrize("align,half", FLAGS, ids=["plain", "align", "half", "align+half"])
@pytest.mark.parametrize("size", SIZES, ids=["x2", "frac", "down", "to1", "row"])
def test_nearest_equals_litert(lib, size, align, half, float32):
    _check_against_litert(lib, _model("RESIZE_NEAREST_NEIGHBOR", size, align, half, float32),
                          np.random.default_rng(sum(size)), float32)


@pytest.mark.parametrize("float32", [False, True], ids=["int8", "float32"])
@pytest.mark.parametrize("align,half", FLAGS[:3], ids=["plain", "align", "half"])
@pytest.mark.parametrize("size", SIZES, ids=["x2", "frac", "down", "to1", "row"])
def test_bilinear_equals_litert(lib, size, align, half, float32):
    _check_against_litert(lib, _model("RESIZE_BILINEAR", size, align, half, float32),
                          np.random.default_rng(sum(size) + 1), float32)


def test_the_bilinear_cases_reach_every_branch():
    """Negative source coordinates (half-pixel, clamped to pixel 0 with a negative fraction),
    the upper bound clamped to the last pixel, align_corners with an output of 1."""
    fracs, his = [], []
    for h, _, oh, _ in SIZES:
        for align, half in FLAGS[:3]:
            lo, hi, fr = bilinear_axis_s8(h, oh, align, half)
            fracs.append(fr.min())
            his.append(((lo + 1 > hi) & (fr > 0)).any())
    assert min(fracs) < 0 and any(his)
    assert any(oh == 1 for _, _, oh, _ in SIZES)


def test_bilinear_with_both_flags_is_refused():
    with pytest.raises(UnsupportedError, match="align_corners and half_pixel_centers"):
        load_tflite(_model("RESIZE_BILINEAR", SIZES[0], True, True))


def test_a_tile_that_is_not_an_upsampling_is_refused():
    act = dict(type="INT8", q=(0.05, 0))
    data = tm.op_tflite("TILE", [dict(shape=(1, 2, 3, 4), **act), dict(shape=[4], type="INT32", data=[1, 2, 1, 1])],
                        dict(shape=(1, 4, 3, 4), **act))
    with pytest.raises(UnsupportedError, match="TILE"):
        load_tflite(data)


def _upsampling_model():
    import keras
    keras.utils.set_random_seed(2)
    inp = keras.Input((4, 5, 3))
    a = keras.layers.UpSampling2D(2)(inp)                              # nearest: RESHAPE + TILE pairs
    b = keras.layers.UpSampling2D((2, 3))(keras.layers.Conv2D(3, 1)(inp))
    b = keras.layers.Cropping2D(((0, 0), (0, 5)))(b)                    # (8, 15) -> (8, 10)
    c = keras.layers.UpSampling2D(2, interpolation="bilinear")(inp)
    h = keras.layers.Add()([keras.layers.Add()([a, b]), c])
    h = keras.layers.Reshape((8, 30))(h)
    h = keras.layers.UpSampling1D(2)(h)                                 # on a (1, T, F) sequence
    return keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(h)))


def test_converted_upsamplings_import_as_one_op_each_and_run_bit_exact():
    model = _upsampling_model()
    calib = np.random.default_rng(3).uniform(-1, 1, (32, 4, 5, 3)).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    interp = tm.reference_interpreter(tm.reference_runnable(data))
    ops = tm.op_types(interp)
    assert ops.count("TILE") == 5 and "RESIZE_BILINEAR" in ops
    compiled = tinytrain.compile(data)
    types = [op.type for op in compiled.graph.ops]
    assert types.count("resize_nearest") == 3 and types.count("resize_bilinear") == 1
    x = np.random.default_rng(4).integers(-128, 128, (20, 1, 4, 5, 3)).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(compiled.run(x), want)


def test_float_keras_resizing_layers_match_tensorflow():
    import keras
    inp = keras.Input((5, 6, 2))
    outs = [keras.layers.UpSampling2D((3, 2))(inp), keras.layers.UpSampling2D(2, interpolation="bilinear")(inp),
            keras.layers.Resizing(7, 4, interpolation="bilinear")(inp),
            keras.layers.Resizing(9, 13, interpolation="nearest")(inp)]
    x = np.random.default_rng(5).standard_normal((6, 5, 6, 2)).astype(np.float32)
    for out in outs:
        model = keras.Model(inp, out)
        compiled = tinytrain.compile(model)
        assert len(compiled.graph.ops) == 1
        np.testing.assert_allclose(compiled.run(x).reshape(6, -1), model.predict(x, verbose=0).reshape(6, -1),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer", ["nearest2x3", "bilinear2", "resizing_bilinear", "resizing_nearest"])
def test_vjps_match_tensorflow_and_the_c_kernels(lib, layer):
    import keras
    import tensorflow as tf
    keras_layer = {"nearest2x3": lambda: keras.layers.UpSampling2D((2, 3)),
                   "bilinear2": lambda: keras.layers.UpSampling2D(2, interpolation="bilinear"),
                   "resizing_bilinear": lambda: keras.layers.Resizing(7, 4, interpolation="bilinear"),
                   "resizing_nearest": lambda: keras.layers.Resizing(9, 13, interpolation="nearest")}[layer]()
    inp = keras.Input((5, 6, 2))
    model = keras.Model(inp, keras_layer(inp))
    g = tinytrain.compile(model).graph
    op = g.ops[0]
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 5, 6, 2)).astype(np.float32)
    dy = rng.standard_normal(g.tensors[op.outputs[0]].shape).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = keras_layer(xt)
    want = tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()
    u = unit(op.type)
    if op.type == "resize_nearest":
        tables = u.tables(g, op)
        got = resize_nearest_grad(dy, *tables, (5, 6))
        args = [ck.carray(t, np.int32) for t in tables]
        fn = lib.tt_resize_nearest_grad_input_f32
    else:
        tables = u.grad_tables(g, op)
        got = resize_bilinear_grad(dy, *tables, (5, 6))
        args = []
        for lo, hi, fr in tables:
            args += [ck.carray(np.concatenate([lo, hi]), np.int32), ck.carray(fr, np.float32)]
        fn = lib.tt_resize_bilinear_grad_input_f32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    gx = np.full(x.shape, 0.25, np.float32)
    fn(ck.ptr(dy), ctypes.byref(ck.dims(dy.shape)), *[ck.ptr(a) for a in args], 1, ck.ptr(gx),
       ctypes.byref(ck.dims(x.shape)))
    np.testing.assert_allclose(gx, want + 0.25, rtol=1e-5, atol=1e-5)


def _graph_with_resizes():
    """conv -> nearest x2 -> conv s2 -> bilinear (half-pixel) to 6x6 -> conv -> gap -> dense."""
    b = GraphBuilder("resizes", (1, 4, 4, 3), seed=7)
    b.conv("conv1", 4, act="relu")
    b.unary("up", "resize_nearest", (1, 8, 8, 4), align_corners=False, half_pixel_centers=False, exact=True)
    b.conv("conv2", 4, stride=2, act="none")
    b.unary("bi", "resize_bilinear", (1, 6, 6, 4), align_corners=False, half_pixel_centers=True)
    b.conv("conv3", 5, act="relu")
    b.gap_flatten()
    b.dense("fc", 3)
    return b.build("resizes")


def _keras_with_resizes():
    """conv -> nearest x2 -> conv s2 -> bilinear (half-pixel) to 6x6 -> conv -> gap -> dense."""
    import keras
    keras.utils.set_random_seed(7)
    inp = keras.Input((4, 4, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.UpSampling2D(2, name="up")(h)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv2")(h)
    h = keras.layers.Resizing(6, 6, interpolation="bilinear", name="bi")(h)
    h = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv3")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, name="fc")(h), name="resizes")


def test_float_training_step_through_resizes_equals_gradient_tape(tmp_path):
    model = _keras_with_resizes()
    types = {op.type for op in tinytrain.compile(model).graph.ops}
    assert {"resize_nearest", "resize_bilinear"} <= types
    x = np.random.default_rng(8).standard_normal((1, 4, 4, 3)).astype(np.float32)
    steps = rm.float_step_gradients(model, "full", x, 1, tmp_path)
    assert len(steps) == 8
    for name, (got, want) in steps.items():
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=name)


def test_int8_training_step_through_resizes_equals_the_simulation(tmp_path):
    g = _graph_with_resizes()
    calib = np.random.default_rng(9).standard_normal((16, 1, 4, 4, 3)).astype(np.float32)
    assert_int8_c_step_equals_simulation(g, calib, "last:4", tmp_path)
