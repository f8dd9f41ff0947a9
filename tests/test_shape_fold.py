"""Shape arithmetic on constants is folded at .tflite import (tinytrain/frontends/shape_fold.py).

TFLiteConverter.from_keras_model on a model with a dynamic batch dimension (what Keras
models have unless built with a fixed batch) turns Flatten into SHAPE -> STRIDED_SLICE ->
PACK -> RESHAPE; other shape code gives GATHER, CONCATENATION and masked slices. These
models import, and run bit-exact with LiteRT's reference kernels in numpy and in the
generated C."""
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

import tflite_models as tm  # noqa: E402
from tinytrain.errors import TinyTrainError  # noqa: E402
from tinytrain.frontends.shape_fold import strided_slice  # noqa: E402
from tinytrain.frontends.tflite import load_tflite  # noqa: E402
from tinytrain.hostmodel import HostModel  # noqa: E402
from tinytrain.refops import run_graph  # noqa: E402

N_SAMPLES = 60
SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "CONCATENATION"}


def _keras_model(name):
    import keras
    keras.utils.set_random_seed(5)
    L = keras.layers
    inp = keras.Input((8, 8, 3))                  # batch dimension left dynamic
    if name == "conv_flatten_dense":
        x = L.MaxPooling2D()(L.Conv2D(4, 3, activation="relu")(inp))
        out = L.Softmax()(L.Dense(5)(L.Flatten()(x)))
    elif name == "flatten_input":
        out = L.Dense(4, activation="relu")(L.Flatten()(inp))
    elif name == "reshape_between_convs":
        x = L.Reshape((4, 9, 4))(L.Conv2D(4, 3)(inp))     # (6, 6, 4) -> (4, 9, 4)
        out = L.Dense(3)(L.Flatten()(L.Conv2D(3, 1, activation="relu")(x)))
    else:
        raise AssertionError(name)
    return keras.Model(inp, out)


def _check_bit_exact(data: bytes, tmp_path, compiled: bool = True):
    interp = tm.reference_interpreter(data)
    graph = load_tflite(data)
    assert not {op.type for op in graph.ops} & {k.lower() for k in SHAPE_OPS}
    detail = interp.get_input_details()[0]
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, size=(N_SAMPLES, *detail["shape"][1:]), dtype=np.int8)
    want = np.stack([tm.invoke(interp, [s[None]]).reshape(-1) for s in x])
    got = np.stack([run_graph(graph, {graph.inputs[0]: s[None]})[graph.outputs[0]].reshape(-1) for s in x])
    np.testing.assert_array_equal(got, want)
    if compiled:
        np.testing.assert_array_equal(HostModel(graph, tmp_path).run(x), want)
    assert len(np.unique(want)) > 5


@pytest.mark.parametrize("name", ["conv_flatten_dense", "flatten_input", "reshape_between_convs"])
def test_keras_dynamic_batch_conversion_is_bit_exact(name, tmp_path):
    model = _keras_model(name)
    calib = np.random.default_rng(1).uniform(-1, 1, (48, 8, 8, 3)).astype(np.float32)
    data = tm.int8_tflite(model, [calib])      # from_keras_model, the standard conversion
    ops = tm.op_types(tm.reference_interpreter(data))
    assert {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"} <= set(ops), ops
    _check_bit_exact(data, tmp_path)


def _concrete_function_tflite(body, quantize: bool) -> bytes:
    import tensorflow as tf
    fn = tf.function(body, input_signature=[tf.TensorSpec((None, 6, 6, 3), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    if quantize:
        calib = np.random.default_rng(2).uniform(-1, 1, (32, 6, 6, 3)).astype(np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def _shape_chains():
    import tensorflow as tf
    w = tf.constant(np.random.default_rng(4).normal(size=(108, 5)).astype(np.float32))
    return {
        # GATHER of the batch, CONCATENATION with the product of the other dims
        "gather_concat": (lambda x: tf.matmul(tf.reshape(x, tf.concat(
            [tf.gather(tf.shape(x), [0]), [tf.reduce_prod(tf.shape(x)[1:])]], 0)), w),
            {"SHAPE", "GATHER", "CONCATENATION"}),
        # a begin-masked slice; the converter leaves the reshape's output shape to run time
        "masked_slice_concat": (lambda x: tf.matmul(tf.reshape(x, tf.concat([tf.shape(x)[:1], [-1]], 0)), w),
                                {"SHAPE", "STRIDED_SLICE", "CONCATENATION"}),
        "stack": (lambda x: tf.matmul(tf.reshape(x, tf.stack([tf.shape(x)[0], 108])), w),
                  {"SHAPE", "STRIDED_SLICE", "PACK"}),
    }


@pytest.mark.parametrize("quantize", [True, False], ids=["int8", "float32"])
@pytest.mark.parametrize("chain", ["gather_concat", "masked_slice_concat", "stack"])
def test_shape_chains_fold(chain, quantize, tmp_path):
    body, expect_ops = _shape_chains()[chain]
    data = _concrete_function_tflite(body, quantize)
    interp = tm.reference_interpreter(data)
    assert expect_ops <= set(tm.op_types(interp)), tm.op_types(interp)
    if quantize:
        _check_bit_exact(data, tmp_path, compiled=False)
        return
    graph = load_tflite(data)
    x = np.random.default_rng(3).normal(size=(8, 6, 6, 3)).astype(np.float32)
    for s in x:
        want = tm.invoke(interp, [s[None]]).reshape(-1)
        got = run_graph(graph, {graph.inputs[0]: s[None]})[graph.outputs[0]].reshape(-1)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


SLICES = [  # begin, end, strides, begin_mask, end_mask, shrink_axis_mask
    ([0], [1], [1], 0, 0, 1),
    ([1], [0], [1], 0, 1, 0),
    ([0], [0], [1], 1, 1, 0),
    ([-1], [0], [-1], 0, 1, 0),
    ([3], [0], [-2], 0, 0, 0),
    ([-2], [-1], [1], 0, 0, 1),
    ([1, 0], [3, 2], [1, 1], 2, 0, 1),
    ([0, 1], [2, 0], [2, 1], 0, 2, 0),
    ([5], [-7], [-1], 0, 0, 0),
]


@pytest.mark.parametrize("case", range(len(SLICES)))
def test_strided_slice_matches_tensorflow(case):
    import tensorflow as tf
    begin, end, strides, bm, em, sm = SLICES[case]
    x = np.arange(4 * 3, dtype=np.int32).reshape(4, 3) if len(begin) == 2 else np.array([1, 7, 7, 3, 5], np.int32)
    want = tf.strided_slice(x, begin, end, strides, begin_mask=bm, end_mask=em, shrink_axis_mask=sm).numpy()
    got = strided_slice(x, begin, end, strides, begin_mask=bm, end_mask=em, shrink_axis_mask=sm)
    np.testing.assert_array_equal(got, want)
    assert got.shape == want.shape


def test_strided_slice_out_of_range_index_is_an_error():
    with pytest.raises(TinyTrainError, match="out of range"):
        strided_slice(np.array([1, 2, 3]), [5], [6], [1], shrink_axis_mask=1)
