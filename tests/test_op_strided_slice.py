"""strided_slice (tinytrain/ops/strided_slice.py): STRIDED_SLICE on activations equal to
LiteRT's reference on each branch of its index logic (StartForAxis / EndForAxis: positive and
negative begin / end, clamping beyond the axis, begin / end masks, strides above 1 and
negative, fewer indices than axes, the offset flag; NHWC, (1, T, F) and (1, F) inputs), numpy
and C, int8 and float32; the masks it cannot express refused; Keras Cropping2D / Cropping1D;
the VJP (a scatter into zeros) against TensorFlow and the C kernel."""
import ctypes

import numpy as np
import pytest

import tinytrain
from tinytrain import refops
from tinytrain.errors import UnsupportedError
from tinytrain.frontends.tflite import load_tflite
from tinytrain.ops import unit

import ckernels as ck
import tflite_models as tm

# (input shape, begin, end, strides, {mask: value}, expected output shape)
CASES = {
    "crop": ((1, 6, 7, 3), [0, 1, 2, 0], [1, 5, 6, 3], [1, 1, 1, 1], {}, (1, 4, 4, 3)),
    "negative-end-masks": ((1, 6, 7, 3), [0, 1, 0, 0], [0, -2, -1, 0], [1, 1, 1, 1],
                           dict(beginMask=9, endMask=9), (1, 3, 6, 3)),
    "strides": ((1, 7, 8, 4), [0, 1, 0, 1], [1, 7, 8, 4], [1, 2, 3, 2], {}, (1, 3, 3, 2)),
    "reverse": ((1, 4, 5, 2), [0, -1, 4, 0], [1, -5, 0, 2], [1, -1, -2, 1], {}, (1, 4, 2, 2)),
    "reverse-masks": ((1, 4, 5, 2), [0, 0, 0, 0], [1, 0, 0, 2], [1, -2, -1, 1], dict(beginMask=6, endMask=6),
                      (1, 2, 5, 2)),
    "clamped": ((1, 5, 6, 3), [0, -100, 2, 0], [1, 100, 100, 3], [1, 1, 2, 1], {}, (1, 5, 2, 3)),
    "short-spec": ((1, 6, 5, 3), [0, 2], [1, 5], [1, 1], {}, (1, 3, 5, 3)),
    "offset": ((1, 6, 7, 3), [0, 1, 2, 0], [1, 3, 4, 3], [1, 1, 1, 1], dict(offset=True), (1, 3, 4, 3)),
    "channels": ((1, 3, 4, 8), [0, 0, 0, 1], [1, 3, 4, 8], [1, 1, 1, 3], {}, (1, 3, 4, 3)),
    "sequence": ((1, 10, 4), [0, 1, 0], [0, -2, 0], [1, 1, 1], dict(beginMask=5, endMask=5), (1, 7, 4)),
    "features": ((1, 12), [0, 3], [1, 11], [1, 2], {}, (1, 4)),
}


def _model(shape, begin, end, strides, masks, out, float32=False):
    act = dict(type="FLOAT32") if float32 else dict(type="INT8", q=(0.03, 5))
    idx = [dict(shape=[len(v)], type="INT32", data=v) for v in (begin, end, strides)]
    return tm.op_tflite("STRIDED_SLICE", [dict(shape=shape, **act), *idx], dict(shape=out, **act), masks,
                        version=2)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="strided_slice*.c", build_dir=tmp_path_factory.mktemp("ck_slice"))


class SliceParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in ("begin_h", "begin_w", "begin_c", "stride_h", "stride_w", "stride_c")]


def _params(op):
    (bh, bw, bc), (sh, sw, sc) = op.attrs["begin"], op.attrs["stride"]
    return SliceParams(bh, bw, bc, sh, sw, sc)


@pytest.mark.parametrize("float32", [False, True], ids=["int8", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_equals_litert(lib, name, float32):
    data = _model(*CASES[name], float32=float32)
    interp = tm.reference_interpreter(data)
    g = load_tflite(data)
    op = g.ops[0]
    xt, yt = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    rng = np.random.default_rng(len(name))
    x = (rng.standard_normal(CASES[name][0]).astype(np.float32) if float32
         else rng.integers(-128, 128, CASES[name][0]).astype(np.int8))
    want = tm.invoke(interp, [x])
    assert want.shape == CASES[name][5]
    got = refops.run_graph(g, {g.inputs[0]: x})[g.outputs[0]]
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    out = np.zeros(yt.shape, x.dtype)
    fn = lib.tt_strided_slice_f32 if float32 else lib.tt_strided_slice_s8
    fn(ck.ptr(np.ascontiguousarray(x)), ctypes.byref(ck.dims(xt.shape if len(xt.shape) == 4 else (1, 1, xt.size))),
       ctypes.byref(_params(op)), ck.ptr(out), ctypes.byref(ck.dims(yt.shape if len(yt.shape) == 4 else (1, 1, yt.size))))
    np.testing.assert_array_equal(out.reshape(want.shape), want)


@pytest.mark.parametrize("masks,what", [(dict(shrinkAxisMask=2), "shrinking"), (dict(ellipsisMask=1), "ellipsis"),
                                        (dict(newAxisMask=4), "new-axis")])
def test_masks_it_cannot_express_are_refused(masks, what):
    data = _model((1, 4, 4, 2), [0, 1, 0, 0], [1, 2, 4, 2], [1, 1, 1, 1], masks, (1, 4, 2))
    with pytest.raises(UnsupportedError, match=what):
        load_tflite(data)


def test_an_empty_slice_is_refused():
    with pytest.raises(UnsupportedError, match="non-empty"):
        load_tflite(_model((1, 4, 4, 2), [0, 3, 0, 0], [1, 1, 4, 2], [1, 1, 1, 1], {}, (1, 0, 4, 2)))


def _crop_model():
    import keras
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 9, 3))
    h = keras.layers.Conv2D(4, 3, padding="same")(inp)
    h = keras.layers.Cropping2D(((1, 2), (3, 0)))(h)
    h = keras.layers.Reshape((5 * 6, 4))(h)
    h = keras.layers.Cropping1D((2, 5))(h)
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(h)))


def test_keras_cropping_converted_to_int8_runs_bit_exact():
    model = _crop_model()
    calib = np.random.default_rng(4).uniform(-1, 1, (32, 8, 9, 3)).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    interp = tm.reference_interpreter(data)
    assert tm.op_types(interp).count("STRIDED_SLICE") >= 2
    compiled = tinytrain.compile(data)
    assert [op.type for op in compiled.graph.ops].count("strided_slice") == 2
    x = np.random.default_rng(5).integers(-128, 128, (20, 1, 8, 9, 3)).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(compiled.run(x), want)


def test_float_keras_cropping_matches_tensorflow():
    model = _crop_model()
    x = np.random.default_rng(6).standard_normal((8, 8, 9, 3)).astype(np.float32)
    compiled = tinytrain.compile(model)
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["negative-end-masks", "strides", "reverse", "channels"])
def test_vjp_matches_tensorflow_and_the_c_kernel(lib, name):
    import tensorflow as tf
    shape, begin, end, strides, masks, out = CASES[name]
    g = load_tflite(_model(shape, begin, end, strides, masks, out, float32=True))
    op = g.ops[0]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(out).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.strided_slice(xt, begin, end, strides, begin_mask=masks.get("beginMask", 0),
                             end_mask=masks.get("endMask", 0))
    want = tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()

    class Step:
        grad_inputs = {op.inputs[0]: "gx"}
    dxs, _ = unit(op.type).vjp(type("Ctx", (), {"graph": g})(), op, dy, Step())
    np.testing.assert_array_equal(dxs[op.inputs[0]], want)
    gx = np.ones(shape, np.float32)
    lib.tt_strided_slice_grad_input_f32(ck.ptr(dy), ctypes.byref(ck.dims(out)), ctypes.byref(_params(op)), 0,
                                        ck.ptr(gx), ctypes.byref(ck.dims(shape)))
    np.testing.assert_array_equal(gx, want)
