"""The elementwise ops through the frontends, on Keras models as users write them: Rescaling,
a batch normalisation that cannot be folded (after an add), squeeze-excite with MobileNetV3's
hard sigmoid written as keras.ops (`ReLU(6.0)(x + 3.0) * (1 / 6)`), Subtract, Maximum,
Minimum, keras.ops.maximum with a constant, tanh / sigmoid, LeakyReLU, ReLU(negative_slope),
PReLU and Concatenate:
  float32: the Keras import and the TFLite float conversion, run as C, match TensorFlow;
  int8:    the converter's output, run as C, equals LiteRT's reference kernels on 50 inputs.
The ops that stay unsupported (ELU, TRANSPOSE, REDUCE_MAX) are refused by the CLI with the
layer and op named, exit 2 and no output folder."""
import numpy as np
import pytest

import tinytrain

import tflite_models as tm
from cli_run import tinytrain as tinytrain_cli
from cli_run import tinytrain_in_process

SHAPE = (8, 8, 3)


def _model():
    import keras
    L = keras.layers
    keras.utils.set_random_seed(11)
    inp = keras.Input(SHAPE)
    x = L.Rescaling(1 / 127.5, offset=-1.0)(inp)
    c = L.BatchNormalization()(L.Conv2D(8, 3, padding="same")(x))       # folded into the conv
    s = L.Add()([c, L.Conv2D(8, 1)(x)])
    s = L.BatchNormalization(name="bn_after_add")(s)                     # standalone: mul + add
    s = L.LeakyReLU(negative_slope=0.1)(s)
    p = L.Conv2D(8, 1)(L.GlobalAveragePooling2D(keepdims=True)(s))
    p = L.ReLU(6.0)(p + 3.0) * (1.0 / 6.0)                               # MobileNetV3's hard sigmoid
    s = L.Multiply(name="se_mul")([s, p])
    t = L.Activation("tanh")(L.Conv2D(4, 1)(s))
    u = L.Conv2D(4, 1, activation="sigmoid")(s)
    v = L.Subtract()([t, u])
    w = L.Maximum()([v, L.Conv2D(4, 1)(s)])
    w = L.Minimum()([w, keras.ops.maximum(L.Conv2D(4, 1)(s), -0.5)])
    w = L.PReLU(shared_axes=[1, 2])(w)
    w = L.ReLU(negative_slope=0.05)(w)
    cat = L.Concatenate()([w, s, x])
    out = L.Dense(5)(L.GlobalAveragePooling2D()(L.Conv2D(6, 3)(cat)))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(12)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.5, 2.0, n)])
        if isinstance(layer, L.PReLU):
            layer.set_weights([rng.uniform(-0.5, 0.5, layer.alpha.shape)])
    return model


def _inputs(n, seed):
    return np.random.default_rng(seed).uniform(0, 255, (n, *SHAPE)).astype(np.float32)


EXPECTED = {"mul", "add", "sub", "maximum", "minimum", "logistic", "tanh", "leaky_relu", "prelu", "concatenation"}


@pytest.fixture(scope="module")
def model():
    return _model()


def test_float_keras_import_matches_tensorflow(model):
    x = _inputs(20, 1)
    compiled = tinytrain.compile(model)
    assert EXPECTED <= {op.type for op in compiled.graph.ops}
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_float_tflite_import_matches_tensorflow(model):
    import tensorflow as tf
    from tinytrain.frontends.tf_quiet import quiet_tensorflow
    with quiet_tensorflow():
        data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    compiled = tinytrain.compile(bytes(data))
    assert {"mul", "add", "concatenation", "prelu"} <= {op.type for op in compiled.graph.ops}
    x = _inputs(20, 2)
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_int8_conversion_runs_bit_exact_with_litert(model):
    data = tm.int8_tflite(model, [_inputs(64, 3)])
    interp = tm.reference_interpreter(data)
    kinds = set(tm.op_types(interp))
    assert {"MUL", "ADD", "SUB", "MAXIMUM", "MINIMUM", "LOGISTIC", "TANH", "LEAKY_RELU", "PRELU",
            "CONCATENATION"} <= kinds, kinds
    compiled = tinytrain.compile(data)
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    x = np.random.default_rng(4).integers(-128, 128, (50,) + inp.shape[1:]).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi[None]]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(compiled.run(x), want)


def _unsupported(kind):
    import keras
    L = keras.layers
    keras.utils.set_random_seed(5)
    inp = keras.Input((4, 5, 3))
    h = L.Conv2D(3, 1)(inp)
    if kind == "ELU":
        out = L.Conv2D(2, 1)(L.ELU(name="odd_layer")(h))
    elif kind == "TRANSPOSE":
        out = L.Conv2D(2, 1)(L.Permute((2, 1, 3), name="odd_layer")(h))
    else:
        out = L.Dense(2)(L.GlobalMaxPooling2D(name="odd_layer")(h))
    calib = np.random.default_rng(5).uniform(-1, 1, (16, 4, 5, 3)).astype(np.float32)
    return tm.int8_tflite(keras.Model(inp, out), [calib])


@pytest.mark.parametrize("kind", ["ELU", "TRANSPOSE", "REDUCE_MAX"])
def test_unsupported_ops_keep_a_clear_error(tmp_path, kind):
    path = tmp_path / "odd.tflite"
    path.write_bytes(_unsupported(kind))
    out = tmp_path / "fw"
    # one through a real process (the entry point's exit code), the others in this one (faster)
    proc = (tinytrain_cli if kind == "ELU" else tinytrain_in_process)("build", path, "-o", out)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    assert kind in proc.stderr and "odd_layer" in proc.stderr, proc.stderr
    assert not out.exists()


def test_batch_norm_at_the_input_and_a_three_way_add():
    """A BatchNormalization with no conv before it becomes a mul and an add by per-channel
    constants; Add of three inputs a chain of two adds (float32, against TensorFlow)."""
    import keras
    L = keras.layers
    keras.utils.set_random_seed(13)
    inp = keras.Input((5, 5, 3))
    x = L.BatchNormalization(name="bn_in")(inp)
    s = L.Add()([L.Conv2D(4, 1)(x), L.Conv2D(4, 3, padding="same")(x), L.Conv2D(4, 1, use_bias=False)(x)])
    model = keras.Model(inp, L.Dense(2)(L.Flatten()(s)))
    rng = np.random.default_rng(14)
    bn = model.get_layer("bn_in")
    bn.set_weights([rng.uniform(0.5, 1.5, 3), rng.normal(0, 0.3, 3), rng.normal(0, 0.3, 3), rng.uniform(0.5, 2, 3)])
    compiled = tinytrain.compile(model)
    types = [op.type for op in compiled.graph.ops]
    assert types[:2] == ["mul", "add"] and types.count("add") == 3
    x = rng.standard_normal((10, 5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
