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


@functools.lru_cache(maxsize=None)
def unet_style():
    """A small U-Net: encoder, Conv2DTranspose and UpSampling2D nearest / bilinear decoders,
    skip connections joined by Concatenate, Cropping2D, a dense head on global pooling."""
    import keras
    L = keras.layers
    keras.utils.set_random_seed(21)
    inp = keras.Input((16, 16, 3))
    e1 = L.Conv2D(8, 3, padding="same", activation="relu", name="enc1")(inp)
    e2 = L.Conv2D(16, 3, padding="same", activation="relu", name="enc2")(L.MaxPooling2D(2)(e1))
    mid = L.Conv2D(16, 3, padding="same", activation="relu", name="mid")(L.MaxPooling2D(2)(e2))
    up2 = L.Conv2DTranspose(16, 2, strides=2, name="up2")(mid)
    d2 = L.Conv2D(8, 3, padding="same", activation="relu", name="dec2")(L.Concatenate(name="skip2")([up2, e2]))
    near = L.UpSampling2D(2, name="up1_nearest")(d2)
    bil = L.UpSampling2D(2, interpolation="bilinear", name="up1_bilinear")(d2)
    d1 = L.Cropping2D(1, name="crop")(L.Concatenate(name="skip1")([L.Add()([near, bil]), e1]))
    d1 = L.Conv2D(8, 3, padding="same", activation="relu", name="dec1")(d1)
    model = keras.Model(inp, L.Dense(4, name="head")(L.GlobalAveragePooling2D()(d1)), name="unet_style")
    rng = np.random.default_rng(22)
    for layer in model.layers:
        for v in layer.weights:
            if "bias" in v.path:
                v.assign(rng.normal(0, 0.2, v.shape).astype(np.float32))
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


# --- a float32 training step against GradientTape ------------------------------------------------

def gradient_tape(model, x, label: int) -> dict[str, np.ndarray]:
    """GradientTape's gradients of the softmax cross-entropy of the logits, by variable path."""
    import tensorflow as tf
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        logits = model(tf.constant(x), training=False)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits([label], tf.reshape(logits, (1, -1)))
    return {v.path: g.numpy() for v, g in zip(variables, tape.gradient(loss, variables))}


def keras_variable_of(model, param: str) -> str:
    """The Keras variable whose gradient moves the IR parameter `param` ("layer.weight" or
    "layer.bias"): the layer's own kernel or bias, or, for a conv without bias whose batch
    norm was folded into it, that batch norm's beta (the folded bias is beta plus constants)."""
    layer_name, kind = param.rsplit(".", 1)
    layer = model.get_layer(layer_name)
    own = [v.path for v in layer.trainable_variables if ("bias" in v.path) == (kind == "bias")]
    if own:
        return own[0]
    assert kind == "bias", param
    for bn in model.layers:
        if type(bn).__name__ == "BatchNormalization" and bn.input._keras_history[0] is layer:
            return bn.beta.path
    raise AssertionError(f"no Keras variable for {param}")


def trained(compiled) -> list[str]:
    """The parameters a compiled training step updates."""
    ops = {op.name: op for op in compiled.graph.ops}
    names = []
    for step in compiled.program.backward:
        if step.update is not None:
            op = ops[step.op]
            names += [op.inputs[1]] * bool(step.update.weight) + [op.inputs[2]] * bool(step.update.bias)
    return names


def ir_layout(value: np.ndarray, ir_shape) -> np.ndarray:
    """A Keras kernel in the IR's layout (HWIO -> OHWI, Dense IO -> OI, a bias as it is)."""
    if value.ndim == 4 and len(ir_shape) == 4:
        return value.transpose(3, 0, 1, 2)
    if value.ndim == 2:
        return value.T
    return value.reshape(ir_shape)


def float_step_gradients(model, scheme: str, x, label: int, work_dir) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One float32 training step of the host build of `model` under `scheme`: for every trained
    parameter, (the gradient the step applied, GradientTape's), in the IR layout. The applied
    gradient is read back as (before - after) / lr, with lr making the largest step about 1:
    a small step would drown in the float32 rounding of the parameters."""
    import tinytrain
    grads = gradient_tape(model, x, label)
    compiled = tinytrain.compile(model, scheme=scheme, passes=False)
    names = trained(compiled)
    lr = 1.0 / max(np.abs(grads[keras_variable_of(model, n)]).max() for n in names)
    with compiled.host_trainer(work_dir) as ht:
        ht.set_hparams(lr)
        before = ht.params()
        ht.train_step(x[0], label)
        after = ht.params()
    assert sorted(after) == sorted(names)
    return {n: ((before[n].astype(np.float64) - after[n]) / lr,
                ir_layout(grads[keras_variable_of(model, n)], after[n].shape)) for n in names}
