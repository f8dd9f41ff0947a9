"""Frontends: Keras (float and int8), .tflite and the reference JSON+NPZ models -> IR."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

import keras_models as km  # noqa: E402
from tinytrain.errors import TinyTrainError, UnsupportedError  # noqa: E402
from tinytrain.frontends import load_model  # noqa: E402
from tinytrain.frontends.keras import keras_to_int8_tflite, load_keras  # noqa: E402
from tinytrain.frontends.tflite import load_tflite, load_tflite_indexed, tflite_padding  # noqa: E402
from tinytrain.ir import same_padding  # noqa: E402
from tinytrain.refops import run_graph  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "tte-models"
FIXTURES = sorted(km.ALL)

TFLITE_TO_IR = {
    "CONV_2D": ["conv2d"], "DEPTHWISE_CONV_2D": ["depthwise_conv2d"],
    "FULLY_CONNECTED": ["fully_connected"], "ADD": ["add"], "AVERAGE_POOL_2D": ["avg_pool2d"],
    "MAX_POOL_2D": ["max_pool2d"], "MEAN": ["global_avg_pool", "reshape"], "RELU": ["relu"],
    "RELU6": ["relu6"], "RESHAPE": ["reshape"], "SOFTMAX": ["softmax"], "PAD": ["pad"],
    "QUANTIZE": ["quantize"], "DEQUANTIZE": ["dequantize"],
}


@functools.lru_cache(maxsize=None)
def int8_model(name: str) -> bytes:
    model, calibration, _ = km.ALL[name]()
    return keras_to_int8_tflite(model, calibration)


def interpreter(tflite: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=tflite, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def run_ir(graph, samples: np.ndarray) -> np.ndarray:
    return np.concatenate([run_graph(graph, {graph.inputs[0]: s[None]})[graph.outputs[0]] for s in samples])


# --- Keras float ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_keras_float_graph_matches_predict(name):
    model, _, test_x = km.ALL[name]()
    graph = load_model(model)
    assert not graph.is_quantized
    assert graph.tensors[graph.inputs[0]].shape == (1,) + tuple(model.inputs[0].shape[1:])
    expected = model.predict(test_x, verbose=0)
    got = run_ir(graph, test_x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(1.0, float(np.abs(expected).max())))


def test_digits_cnn_trains_above_90_percent():
    model, _, _ = km.digits_cnn()
    _, _, x_test, y_test = km.digits_data()
    assert (model.predict(x_test, verbose=0).argmax(axis=1) == y_test).mean() > 0.90


def test_keras_layouts_and_relu_fusion():
    model, _, _ = km.digits_cnn()
    graph = load_keras(model)
    assert [(op.type, op.attrs.get("activation")) for op in graph.ops] == [
        ("conv2d", "relu"), ("depthwise_conv2d", "relu"), ("conv2d", "relu"),
        ("max_pool2d", "none"), ("reshape", None), ("fully_connected", "none")]
    kernel = model.get_layer("conv1").get_weights()[0]            # HWIO
    np.testing.assert_array_equal(graph.tensors["conv1.weight"].data, kernel.transpose(3, 0, 1, 2))
    dw = model.get_layer("dw2").get_weights()[0]                  # (H, W, C, 1)
    np.testing.assert_array_equal(graph.tensors["dw2.weight"].data, dw[..., 0])
    dense = model.get_layer("logits").get_weights()[0]            # IO
    np.testing.assert_array_equal(graph.tensors["logits.weight"].data, dense.T)
    assert graph.ops[0].attrs["pad"] == (1, 1, 1, 1)


def test_batch_norm_is_folded_and_relu6_fused():
    model, _, _ = km.depthwise_separable()
    graph = load_keras(model)
    types = [(op.type, op.attrs.get("activation")) for op in graph.ops]
    assert types[:3] == [("conv2d", "relu6"), ("depthwise_conv2d", "relu6"), ("conv2d", "relu")]
    assert graph.ops[0].attrs["stride"] == (2, 2) and graph.ops[0].attrs["pad"] == (0, 1, 0, 1)
    assert graph.tensors[graph.ops[3].outputs[0]].shape == (1, 1, 1, 16)   # global_avg_pool
    # use_bias=False convs get the folded batch-norm shift as bias.
    assert np.abs(graph.tensors["stem.bias"].data).max() > 0


def test_relu_kept_standalone_when_its_input_has_other_readers():
    keras = km._keras()
    inp = keras.Input((4, 4, 2), name="x")
    conv = keras.layers.Conv2D(2, 1, name="conv")(inp)
    relu = keras.layers.ReLU(name="relu")(conv)
    out = keras.layers.Add(name="add")([conv, relu])
    model = keras.Model(inp, out)
    graph = load_keras(model)
    assert [op.type for op in graph.ops] == ["conv2d", "relu", "add"]
    assert graph.ops[0].attrs["activation"] == "none"
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(run_ir(graph, x), model.predict(x, verbose=0), atol=1e-5)


def test_keras_file_roundtrip(tmp_path):
    model, _, _ = km.digits_cnn()
    path = tmp_path / "digits.keras"
    model.save(path)
    assert load_model(path).fingerprint() == load_model(model).fingerprint()


# --- Keras int8 / .tflite --------------------------------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_int8_tflite_matches_interpreter_details(name):
    tflite = int8_model(name)
    graph, index_to_ir = load_tflite_indexed(tflite)
    assert graph.is_quantized
    it = interpreter(tflite)
    expected_types = [t for op in it._get_ops_details() for t in TFLITE_TO_IR[op["op_name"]]]
    assert [op.type for op in graph.ops] == expected_types
    details = {d["index"]: d for d in it.get_tensor_details()}
    for index, ir_name in index_to_ir.items():
        d, t = details[index], graph.tensors[ir_name]
        q = d["quantization_parameters"]
        assert t.dtype == np.dtype(d["dtype"]).name, ir_name
        assert t.size == int(np.prod(d["shape"])), ir_name
        if t.data is None or t.data.ndim != 3:
            assert t.shape == tuple(d["shape"]), ir_name
        np.testing.assert_array_equal(t.quant.scale, q["scales"].astype(np.float64), err_msg=ir_name)
        np.testing.assert_array_equal(t.quant.zero_point, q["zero_points"], err_msg=ir_name)
        if t.is_const:
            raw = it.get_tensor(index)
            np.testing.assert_array_equal(t.data.reshape(-1), raw.reshape(-1), err_msg=ir_name)
            if t.data.ndim == 3:                                  # depthwise (1,H,W,C) -> HWC
                assert t.shape == tuple(d["shape"][1:]) and t.quant.axis == 2
            elif t.quant.per_channel:
                assert t.quant.axis == q["quantized_dimension"] == 0
    ins, outs = it.get_input_details()[0], it.get_output_details()[0]
    assert graph.inputs == [index_to_ir[ins["index"]]] and graph.outputs == [index_to_ir[outs["index"]]]


@pytest.mark.parametrize("name", FIXTURES)
def test_int8_graph_runs_like_the_interpreter(name):
    """The imported int8 graph, run by refops, gives TFLite's reference-kernel outputs bit for bit."""
    tflite = int8_model(name)
    graph = load_tflite(tflite)
    it = interpreter(tflite)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scale, zero = inp["quantization"]
    _, _, test_x = km.ALL[name]()
    for sample in test_x[:8]:
        xq = np.clip(np.round(sample[None] / scale) + zero, -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], xq)
        it.invoke()
        expected = it.get_tensor(out["index"]).astype(np.int32)
        got = run_graph(graph, {graph.inputs[0]: xq})[graph.outputs[0]].astype(np.int32)
        np.testing.assert_array_equal(got, expected)


def test_load_keras_int8_is_the_tflite_import(tmp_path):
    model, calibration, _ = km.mlp()
    graph = load_model(model, quantize="int8", calibration=calibration)
    assert graph.fingerprint() == load_tflite(int8_model("mlp"), name=graph.name).fingerprint()
    path = tmp_path / "mlp.tflite"
    path.write_bytes(int8_model("mlp"))
    assert load_model(path).fingerprint() == load_model(int8_model("mlp")).fingerprint()
    with pytest.raises(TinyTrainError, match="calibration"):
        load_model(model, quantize="int8")


def test_tflite_padding_matches_tensorflow():
    for size in range(1, 12):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                _, before, after = same_padding(size, k, s)
                assert tflite_padding(False, size, k, s) == (before, after)
                assert tflite_padding(True, size, k, s) == (0, 0)
    assert tflite_padding(False, 8, 3, 2) == (0, 1)
    assert tflite_padding(False, 7, 3, 1, dilation=2) == (2, 2)


# --- unsupported input --------------------------------------------------------------------------

def _expect_unsupported(model, layer: str, what: str):
    with pytest.raises(UnsupportedError, match=what) as info:
        load_keras(model)
    assert info.value.layer == layer


def test_keras_unsupported_layers_name_the_layer():
    keras = km._keras()
    inp = keras.Input((5, 3), name="seq")
    _expect_unsupported(keras.Model(inp, keras.layers.LSTM(4, name="recurrent")(inp)),
                        "recurrent", "layer type LSTM")
    img = keras.Input((6, 6, 2), name="img")
    _expect_unsupported(keras.Model(img, keras.layers.Conv2D(2, 3, activation="elu", name="elu_conv")(img)),
                        "elu_conv", "activation 'elu'")
    chw = keras.Input((2, 6, 6), name="chw")
    _expect_unsupported(
        keras.Model(chw, keras.layers.Conv2D(2, 3, data_format="channels_first", name="cf")(chw)),
        "cf", "data_format channels_first")
    pooled = keras.layers.MaxPooling2D(name="mp")(img)
    _expect_unsupported(keras.Model(img, keras.layers.BatchNormalization(axis=1, name="bn")(pooled)),
                        "bn", "BatchNormalization over axis 1")
    _expect_unsupported(keras.Model(img, keras.layers.Dense(3, name="dense4d")(img)),
                        "dense4d", "rank-4")
    _expect_unsupported(keras.Model(img, keras.layers.Conv2D(4, 3, groups=2, name="grouped")(img)),
                        "grouped", "groups")


def test_tflite_unsupported_op_names_the_op():
    keras = km._keras()
    inp = keras.Input((4, 4, 2), name="x")
    x = keras.layers.Conv2D(3, 1, name="conv")(inp)
    x = keras.layers.Activation("elu", name="squash")(x)
    out = keras.layers.Conv2D(2, 1, name="after")(x)
    model = keras.Model(inp, out)
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 4, 4, 2)).astype(np.float32)
    tflite = keras_to_int8_tflite(model, calibration)
    with pytest.raises(UnsupportedError, match="ELU") as info:
        load_tflite(tflite)
    assert "squash" in info.value.layer
    with pytest.raises(UnsupportedError, match="ELU"):
        load_model(model, quantize="int8", calibration=calibration)


def test_load_model_rejects_bad_sources(tmp_path):
    with pytest.raises(TinyTrainError, match="not found"):
        load_model(tmp_path / "missing.tflite")
    odd = tmp_path / "model.onnx"
    odd.write_bytes(b"\0")
    with pytest.raises(TinyTrainError, match="unknown model format"):
        load_model(odd)
    with pytest.raises(TinyTrainError):
        load_model(b"definitely not a flatbuffer")
    with pytest.raises(TinyTrainError, match="Keras models only"):
        load_model(int8_model("mlp"), quantize="int8")
    with pytest.raises(TinyTrainError):
        load_model(42)


# --- reference JSON + NPZ --------------------------------------------------------------------------

REFERENCE_MODELS = {   # name: (conv2d, depthwise, add)
    "mcunet-5fps": (28, 14, 7),
    "mbv2-w0.35": (34, 17, 10),
    "proxyless-w0.3": (40, 20, 13),
}


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference data ../shared/reference/ not present")
@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_reference_model_imports(name):
    graph = load_model(REFERENCE / f"{name}.json")
    spec = json.loads((REFERENCE / f"{name}.json").read_text())
    npz = np.load(REFERENCE / f"{name}.npz")
    n_conv, n_dw, n_add = REFERENCE_MODELS[name]
    types = [op.type for op in graph.ops]
    assert (types.count("conv2d"), types.count("depthwise_conv2d"), types.count("add")) == (n_conv, n_dw, n_add)
    assert types[-2:] == ["global_avg_pool", "fully_connected"]
    assert graph.tensors[graph.inputs[0]].shape == (1, 128, 128, 3)
    assert graph.tensors[graph.outputs[0]].shape == (1, 1000)
    assert graph.is_quantized
    convs = [op for op in graph.ops if op.type in ("conv2d", "depthwise_conv2d")]
    assert [op.attrs["conv_index"] for op in convs] == list(range(spec["num_convs"]))
    assert all("role" in op.attrs and op.attrs["activation"] == "none" for op in convs)

    first = convs[0]                                   # OIHW -> OHWI
    w = npz[f"{first.name}.weight"]
    np.testing.assert_array_equal(graph.tensors[first.inputs[1]].data, w.transpose(0, 2, 3, 1))
    k = w.shape[2]
    assert first.attrs["pad"] == ((k - 1) // 2,) * 4
    dw = next(op for op in convs if op.type == "depthwise_conv2d")   # (C,1,H,W) -> HWC
    np.testing.assert_array_equal(graph.tensors[dw.inputs[1]].data, npz[f"{dw.name}.weight"][:, 0].transpose(1, 2, 0))
    assert graph.tensors[dw.inputs[1]].quant.axis == 2
    for op in convs + [graph.ops[-1]]:
        x, wt, b = (graph.tensors[n] for n in op.inputs)
        np.testing.assert_array_equal(wt.quant.scale, npz[f"{op.name}.w_scales"])
        np.testing.assert_allclose(b.quant.scale, x.scale * wt.quant.scale, rtol=1e-15)
        assert b.dtype == "int32" and wt.dtype == "int8"
    layers = {layer["name"]: layer for layer in spec["layers"]}
    for op in graph.ops:
        if op.type == "add":
            layer = layers[op.name]
            assert op.inputs == layer["input"]             # main branch first, then shortcut
            assert graph.tensors[op.inputs[1]].zero_point == layer["shortcut_zero"]
            y = graph.tensors[op.outputs[0]]
            assert (y.scale, y.zero_point) == (layer["y_scale"], layer["y_zero"])
    pool = graph.tensors[graph.ops[-2].outputs[0]]
    pool_in = graph.tensors[graph.ops[-2].inputs[0]]
    assert (pool.scale, pool.zero_point) == (pool_in.scale, pool_in.zero_point)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference data ../shared/reference/ not present")
def test_reference_inconsistent_quantization_is_reported(tmp_path):
    spec = json.loads((REFERENCE / "mcunet-5fps.json").read_text())
    spec["layers"][1]["x_scale"] *= 2
    (tmp_path / "broken.json").write_text(json.dumps(spec))
    (tmp_path / "broken.npz").write_bytes((REFERENCE / "mcunet-5fps.npz").read_bytes())
    with pytest.raises(TinyTrainError, match="conv1"):
        load_model(tmp_path / "broken.json")
    spec["layers"][1]["x_scale"] /= 2
    spec["layers"][3]["op"] = "grouped_conv"
    (tmp_path / "broken.json").write_text(json.dumps(spec))
    with pytest.raises(UnsupportedError, match="grouped_conv"):
        load_model(tmp_path / "broken.json")


# --- the shipped example ---------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"


def test_shipped_digits_model_imports_and_classifies():
    graph = load_model(EXAMPLE / "digits_cnn.tflite")
    float_graph = load_model(EXAMPLE / "digits_cnn.keras")
    assert [op.type for op in graph.ops] == [op.type for op in float_graph.ops]
    assert graph.tensors[graph.inputs[0]].dtype == "int8"
    assert sum(t.size for t in float_graph.constants()) < 5000
    with np.load(EXAMPLE / "digits_test.npz") as data:
        x, y = data["x"], data["y"]
    assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 1) and len(x) == len(y)
    inp = graph.tensors[graph.inputs[0]]
    xq = np.clip(np.round(x[:150] / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    accuracy = (run_ir(graph, xq).argmax(axis=1) == y[:150]).mean()
    assert accuracy > 0.9


# --- other .tflite flavours ---------------------------------------------------------------------

def _converter(model, input_shape):
    import tensorflow as tf
    keras = km._keras()
    fixed = keras.Input(batch_shape=(1,) + input_shape)
    return tf, tf.lite.TFLiteConverter.from_keras_model(keras.Model(fixed, model(fixed)))


def test_tflite_float_io_gets_quantize_and_dequantize():
    model, calibration, test_x = km.pool_softmax()
    tf, converter = _converter(model, (15, 15, 2))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(16))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tflite = converter.convert()
    graph = load_tflite(tflite)
    types = [op.type for op in graph.ops]
    assert types[0] == "quantize" and types[-1] == "dequantize"
    assert graph.tensors[graph.inputs[0]].dtype == graph.tensors[graph.outputs[0]].dtype == "float32"
    it = interpreter(tflite)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    for sample in test_x[:3]:
        it.set_tensor(inp["index"], sample[None])
        it.invoke()
        got = run_graph(graph, {graph.inputs[0]: sample[None]})[graph.outputs[0]]
        np.testing.assert_allclose(got, it.get_tensor(out["index"]), atol=1.01 / 256)


def test_tflite_float_model_and_hybrid_rejection():
    model, _, test_x = km.mlp()
    tf, converter = _converter(model, (64,))
    graph = load_tflite(converter.convert())
    assert not graph.is_quantized
    np.testing.assert_allclose(run_ir(graph, test_x[:4]), model.predict(test_x[:4], verbose=0), atol=1e-5)
    tf, converter = _converter(model, (64,))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]       # dynamic range: int8 weights, float math
    with pytest.raises(UnsupportedError, match="hybrid|dequantize"):
        load_tflite(converter.convert())
