"""Whole architectures for the acceptance tests of issue 9: keras.applications MobileNetV2
and MobileNetV3Small (weights=None, random batch-norm statistics and biases) and
ResNet-style / U-Net-style models of our own; their full-integer conversion with the
converter's default (dynamic batch) settings, cached on disk across sessions.

    model = mobilenet_v2()
    data = cached_int8_tflite(model, calibration(model))

The cache ($TINYTRAIN_CACHE or the temp dir, `converted/<hash>.tflite`) is keyed by the
model's weights and architecture, the calibration data and TensorFlow's version: converting
MobileNetV2 takes about a minute, and every test session would otherwise repeat it.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

import tflite_models as tm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def randomize(model, seed: int) -> None:
    """Non-trivial batch-norm statistics and biases (Keras initialises them to 0 / 1), so
    folding and every bias path are really exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c),
                               rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c)])
        else:
            for v in layer.weights:
                if "bias" in v.path:
                    v.assign(rng.normal(0, 0.2, v.shape).astype(np.float32))


@functools.lru_cache(maxsize=None)
def mobilenet_v2():
    """keras.applications.MobileNetV2(alpha 0.35, 96x96) with a 10-class logits head on its
    global average pooling (the tail MEAN -> per-channel FULLY_CONNECTED)."""
    import keras
    keras.utils.set_random_seed(90)
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None,
                                          include_top=False, pooling="avg")
    model = keras.Model(base.input, keras.layers.Dense(10, name="logits")(base.output), name="mobilenet_v2")
    randomize(model, 91)
    return model


@functools.lru_cache(maxsize=None)
def mobilenet_v3_small():
    """keras.applications.MobileNetV3Small(96x96) with its own head (1x1 convs, Flatten) and
    logits out (classifier_activation=None), 10 classes; its Rescaling preprocessing kept."""
    import keras
    keras.utils.set_random_seed(92)
    model = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None, classes=10,
                                                classifier_activation=None, include_preprocessing=True)
    randomize(model, 93)
    return model


@functools.lru_cache(maxsize=None)
def resnet_style():
    """Residual stages with batch norm (folded), identity and strided 1x1 projection shortcuts,
    max pooling, global pooling and a dense head."""
    import keras
    L = keras.layers
    keras.utils.set_random_seed(94)

    def conv_bn(x, filters, kernel, strides, name, relu=True):
        x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
        x = L.BatchNormalization(name=name + "_bn")(x)
        return L.ReLU(name=name + "_relu")(x) if relu else x

    def block(x, filters, strides, name):
        shortcut = x
        if strides != 1 or x.shape[-1] != filters:
            shortcut = conv_bn(x, filters, 1, strides, name + "_proj", relu=False)
        h = conv_bn(x, filters, 3, strides, name + "_a")
        h = conv_bn(h, filters, 3, 1, name + "_b", relu=False)
        return L.ReLU(name=name + "_out")(L.Add(name=name + "_add")([h, shortcut]))

    inp = keras.Input((32, 32, 3))
    x = conv_bn(inp, 16, 3, 1, "stem")
    x = L.MaxPooling2D(2, name="pool")(x)
    x = block(x, 16, 1, "res1")
    x = block(x, 32, 2, "res2")
    x = block(x, 32, 1, "res3")
    x = block(x, 48, 2, "res4")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, L.Dense(10, name="head")(x), name="resnet_style")
    randomize(model, 95)
    return model


def calibration(model, n: int = 32, seed: int = 96) -> np.ndarray:
    """Uniform float32 samples in the model's input range ([0, 255] for MobileNetV3's built-in
    preprocessing, [-1, 1] otherwise)."""
    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(seed).uniform(-1, 1, (n,) + shape).astype(np.float32)
    return x * 127.5 + 127.5 if model.name.startswith("MobileNetV3") else x


def _cache_dir() -> Path:
    base = Path(os.environ.get("TINYTRAIN_CACHE") or Path(tempfile.gettempdir()) / "tinytrain-cache")
    path = base / "converted"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_int8_tflite(model, calib: np.ndarray) -> bytes:
    """tm.int8_tflite (TFLiteConverter.from_keras_model, dynamic batch) of `model`, cached by
    a hash of its architecture, weights, the calibration data and TensorFlow's version."""
    import json
    import tensorflow as tf
    h = hashlib.sha256()
    h.update(tf.__version__.encode())
    h.update(json.dumps(model.to_json(), sort_keys=True).encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    h.update(np.ascontiguousarray(calib).tobytes())
    path = _cache_dir() / f"{model.name}-{h.hexdigest()[:20]}.tflite"
    if path.exists():
        return path.read_bytes()
    from tinytrain.frontends.tf_quiet import quiet_tensorflow
    with quiet_tensorflow():          # the converter prints every captured variable
        data = tm.int8_tflite(model, [calib])
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data
