"""Small deterministic Keras models shared by the tests.

Each fixture returns (model, calibration_inputs, test_inputs): float32 arrays shaped like the
model input with the batch axis first (NHWC for images). Models are built (and digits_cnn
trained) once per session; seeds are fixed, so every run sees the same weights.
"""
from __future__ import annotations

import functools
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _keras():
    import keras
    return keras


def _random_inputs(shape, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, *shape)).astype(np.float32)


def _randomize_batch_norms(model, seed: int) -> None:
    """Give every BatchNormalization non-trivial statistics, so folding them is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c),
                               rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c)])


@functools.lru_cache(maxsize=None)
def digits_data():
    """sklearn's 8x8 digits as float32 NHWC in [0, 1]: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_train, y_train, x_test, y_test


@functools.lru_cache(maxsize=None)
def mlp():
    """Dense layers on flattened digits (rank-2 input): dense+relu, dropout, ReLU layer, softmax."""
    keras = _keras()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((64,), name="features"),
        keras.layers.Dense(32, activation="relu", name="fc1"),
        keras.layers.Dropout(0.25, name="drop"),
        keras.layers.Dense(16, name="fc2"),
        keras.layers.ReLU(name="fc2_relu"),
        keras.layers.Dense(10, name="logits"),
        keras.layers.Softmax(name="probs"),
    ], name="mlp")
    x_train, _, x_test, _ = digits_data()
    return model, x_train[:64].reshape(-1, 64), x_test[:16].reshape(-1, 64)


@functools.lru_cache(maxsize=None)
def digits_cnn():
    """A small CNN trained on the digits (>90% test accuracy): conv, depthwise, pool, dense."""
    keras = _keras()
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.DepthwiseConv2D(3, padding="same", name="dw2"),
        keras.layers.ReLU(name="dw2_relu"),
        keras.layers.Conv2D(16, 1, activation="relu", name="pw2"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, name="logits"),
    ], name="digits_cnn")
    x_train, y_train, x_test, y_test = digits_data()
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0)
    return model, x_train[:100], x_test


@functools.lru_cache(maxsize=None)
def depthwise_separable():
    """MobileNet-style block with BatchNormalization to fold, ReLU6, stride 2, global pooling."""
    keras = _keras()
    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0, name="dw_relu6")(x)
    x = keras.layers.Conv2D(16, 1, use_bias=False, name="pw")(x)
    x = keras.layers.BatchNormalization(name="pw_bn")(x)
    x = keras.layers.Activation("relu", name="pw_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(5, name="head")(x)
    model = keras.Model(inp, out, name="depthwise_separable")
    _randomize_batch_norms(model, seed=3)
    return model, _random_inputs((12, 12, 3), 48, seed=30), _random_inputs((12, 12, 3), 8, seed=31)


@functools.lru_cache(maxsize=None)
def residual_block():
    """Two convs and an identity shortcut joined by Add (+ReLU), zero padding, a valid conv."""
    keras = _keras()
    keras.utils.set_random_seed(4)
    inp = keras.Input((8, 8, 6), name="image")
    stem = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="res_a")(stem)
    x = keras.layers.Conv2D(8, 3, padding="same", name="res_b")(x)
    x = keras.layers.Add(name="res_add")([x, stem])
    x = keras.layers.ReLU(name="res_relu")(x)
    x = keras.layers.ZeroPadding2D(((1, 0), (0, 1)), name="zpad")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, name="down")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(3, name="head")(x)
    model = keras.Model(inp, out, name="residual_block")
    return model, _random_inputs((8, 8, 6), 48, seed=40), _random_inputs((8, 8, 6), 8, seed=41)


@functools.lru_cache(maxsize=None)
def pool_softmax():
    """Average and max pooling (VALID and SAME), Reshape, and a softmax output."""
    keras = _keras()
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((15, 15, 2), name="image"),
        keras.layers.Conv2D(6, 3, activation="relu6", name="conv"),
        keras.layers.AveragePooling2D(3, strides=2, padding="same", name="avg"),
        keras.layers.MaxPooling2D(2, padding="same", name="max"),
        keras.layers.Reshape((4 * 4 * 6,), name="reshape"),
        keras.layers.Dense(6, name="logits"),
        keras.layers.Activation("softmax", name="probs"),
    ], name="pool_softmax")
    return model, _random_inputs((15, 15, 2), 48, seed=50), _random_inputs((15, 15, 2), 8, seed=51)


ALL = {f.__name__: f for f in (mlp, digits_cnn, depthwise_separable, residual_block, pool_softmax)}
