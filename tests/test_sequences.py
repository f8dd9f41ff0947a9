"""Rank-3 activations: a (1, T, F) sequence is held as NHWC (1, 1, T, F) from import on, so the
existing conv / pooling / fully-connected units run Conv1D, DepthwiseConv1D, MaxPooling1D,
AveragePooling1D, ZeroPadding1D, GlobalAveragePooling1D and Dense on a sequence (TFLite's
FULLY_CONNECTED with keep_num_dims, or the Tensordot RESHAPE / FULLY_CONNECTED / RESHAPE of a
dynamic-batch conversion). A keyword-spotting-like model and a Dense-on-sequence model import
and run bit-exact against LiteRT's reference kernels (int8) and match TensorFlow (float32)."""
import numpy as np
import pytest

import tinytrain
from tinytrain.errors import UnsupportedError
from tinytrain.frontends.keras import keras_to_int8_tflite

import tflite_models as tm


def _kws_model():
    import keras
    L = keras.layers
    keras.utils.set_random_seed(11)
    inp = keras.Input((49, 10))                      # 49 frames of 10 MFCCs
    h = L.Conv1D(16, 5, strides=2, padding="same")(inp)
    h = L.ReLU()(L.BatchNormalization()(h))
    h = L.DepthwiseConv1D(3, padding="same", activation="relu")(h)
    h = L.Conv1D(24, 1, activation="relu")(h)
    h = L.ZeroPadding1D(1)(h)
    h = L.Conv1D(24, 3, padding="causal", activation="relu")(h)
    h = L.MaxPooling1D(2)(h)
    h = L.AveragePooling1D(2, padding="same")(h)
    h = L.GlobalAveragePooling1D()(h)
    model = keras.Model(inp, L.Dense(12)(h))
    rng = np.random.default_rng(12)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.2, 16))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, 16))
        for v in layer.weights:
            if "bias" in v.path:
                v.assign(rng.normal(0, 0.2, v.shape).astype(np.float32))
    return model


def _dense_on_sequence_model():
    import keras
    L = keras.layers
    keras.utils.set_random_seed(13)
    inp = keras.Input((10, 6))
    h = L.Dense(8, activation="relu", name="rows1")(inp)     # applied to each of the 10 rows
    h = L.Dense(5, name="rows2")(h)
    return keras.Model(inp, L.Dense(3)(L.Flatten()(h)))


def _litert_outputs(data: bytes, x: np.ndarray) -> np.ndarray:
    interp = tm.reference_interpreter(data)
    return np.stack([tm.invoke(interp, [xi[None]]).reshape(-1) for xi in x])


def _int8_inputs(shape, n=50, seed=14):
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape).astype(np.int8)


@pytest.mark.parametrize("build", [_kws_model, _dense_on_sequence_model], ids=["kws", "dense-on-sequence"])
def test_converter_default_int8_runs_bit_exact(build):
    """tf.lite.TFLiteConverter.from_keras_model with its default dynamic batch."""
    model = build()
    shape = tuple(model.inputs[0].shape[1:])
    calib = np.random.default_rng(15).uniform(-1, 1, (64,) + shape).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    compiled = tinytrain.compile(data)
    assert compiled.graph.tensors[compiled.graph.inputs[0]].shape == (1, 1) + shape
    x = _int8_inputs(shape)
    np.testing.assert_array_equal(compiled.run(x), _litert_outputs(data, x))


def test_dense_on_sequence_with_keep_num_dims_runs_bit_exact():
    """tinytrain's own conversion (a batch-1 wrapper): FULLY_CONNECTED with keep_num_dims."""
    model = _dense_on_sequence_model()
    calib = np.random.default_rng(16).uniform(-1, 1, (64, 10, 6)).astype(np.float32)
    data = keras_to_int8_tflite(model, calib)
    interp = tm.reference_interpreter(data)
    assert tm.op_types(interp) == ["FULLY_CONNECTED"] * 2 + ["RESHAPE", "FULLY_CONNECTED"]
    compiled = tinytrain.compile(data)
    assert [op.type for op in compiled.graph.ops] == ["fully_connected"] * 2 + ["reshape", "fully_connected"]
    x = _int8_inputs((10, 6))
    np.testing.assert_array_equal(compiled.run(x), _litert_outputs(data, x))


def test_kws_through_tinytrains_own_int8_conversion_runs_bit_exact():
    """`tinytrain compile --quantize int8`'s path (a batch-1 wrapper, no dynamic batch):
    Conv1D / DepthwiseConv1D as CONV_2D / DEPTHWISE_CONV_2D between EXPAND_DIMS and SQUEEZE."""
    model = _kws_model()
    calib = np.random.default_rng(20).uniform(-1, 1, (64, 49, 10)).astype(np.float32)
    data = keras_to_int8_tflite(model, calib)
    compiled = tinytrain.compile(data)
    assert {"conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d", "pad"} <= {op.type for op in compiled.graph.ops}
    x = _int8_inputs((49, 10), seed=21)
    np.testing.assert_array_equal(compiled.run(x), _litert_outputs(data, x))


def test_int8_training_of_the_kws_model_steps_like_the_simulation(tmp_path):
    """QAS on an int8 Conv1D model: the last Conv1D and the classifier (`last:2`)."""
    calib = np.random.default_rng(22).uniform(-1, 1, (64, 49, 10)).astype(np.float32)
    compiled = tinytrain.compile(_kws_model(), quantize="int8", calibration=calib, scheme="last:2", lr=0.05,
                                 update="nearest", passes=False)
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    x = np.clip(np.round(calib[:4] / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    labels = [1, 5, 7, 11]
    sim = compiled.simulator()
    with compiled.host_trainer(tmp_path) as ht:
        losses = [loss for loss, _ in ht.train_many(x.reshape((4,) + inp.shape), labels)]
        params = ht.params()
    np.testing.assert_allclose(losses, [sim.step(xi.reshape(inp.shape), y).loss for xi, y in zip(x, labels)],
                               rtol=1e-5)
    for name, value in params.items():
        d = np.abs(value.astype(np.int64) - sim.params[name].astype(np.int64))
        assert d.max() <= 1 and (d == 0).mean() >= 0.98, name


@pytest.mark.parametrize("build", [_kws_model, _dense_on_sequence_model], ids=["kws", "dense-on-sequence"])
def test_float_models_match_tensorflow(build):
    model = build()
    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(17).standard_normal((10,) + shape).astype(np.float32)
    compiled = tinytrain.compile(model)
    assert all(len(t.shape) in (2, 4) for t in compiled.graph.activations())
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_training_the_kws_classifier_and_last_conv1d_steps_like_the_simulation(tmp_path):
    compiled = tinytrain.compile(_kws_model(), scheme="last:2", lr=0.05, passes=False)
    x = np.random.default_rng(18).standard_normal((3, 1, 1, 49, 10)).astype(np.float32)
    sim = compiled.simulator()
    with compiled.host_trainer(tmp_path) as ht:
        losses = [loss for loss, _ in ht.train_many(x, [1, 5, 7])]
        params = ht.params()
    np.testing.assert_allclose(losses, [sim.step(xi, y).loss for xi, y in zip(x, [1, 5, 7])], rtol=1e-5)
    for name, value in params.items():
        np.testing.assert_allclose(value, sim.params[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_training_a_dense_applied_to_rows_is_refused_naming_the_layer():
    with pytest.raises(UnsupportedError, match="rows2.*backward of a Dense applied to each of 10 rows"):
        tinytrain.compile(_dense_on_sequence_model(), scheme="last:2")


def test_samples_may_be_given_as_sequences():
    from tinytrain.datasets import check_samples
    x = np.zeros((4, 49, 10), np.float32)
    got, _ = check_samples(x, None, (1, 1, 49, 10), 12, "samples.npz")
    assert got.shape == (4, 49, 10)


def test_conv1d_layers_count_as_weighted_layers(tmp_path):
    """Schemes count and name Keras Conv1D / DepthwiseConv1D layers like Conv2D ones, in a
    .keras file and through the int8 conversion."""
    from tinytrain.frontends.keras import keras_file_weighted_layers, load_keras
    from tinytrain.ops import unit
    model = _kws_model()
    path = tmp_path / "kws.keras"
    model.save(path)
    names = [layer.name for layer in model.layers
             if type(layer).__name__ in ("Conv1D", "DepthwiseConv1D", "Dense")]
    assert len(names) == 5 and keras_file_weighted_layers(path) == names
    calib = np.random.default_rng(19).uniform(-1, 1, (16, 49, 10)).astype(np.float32)
    graph = load_keras(model, quantize="int8", calibration=calib)
    ops = [op.name for op in graph.ops if unit(op.type).weighted]
    assert [graph.layer_names.get(n, n) for n in names] == ops
