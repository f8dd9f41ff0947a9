"""Train the example digits CNN and write the files the README's commands use.

    python examples/digits/make_model.py

writes, beside this script:
    digits_cnn.keras    the float Keras model
    digits_cnn.tflite   int8 (full-integer, int8 input and output), calibrated on training data
    digits_test.npz     held-out digits: x float32 (N, 8, 8, 1) in [0, 1], y int64 labels
and prints the float and int8 (LiteRT) test accuracy. Seeded: reruns give the same model.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
SEED = 7
EPOCHS = 25
CALIBRATION_SAMPLES = 200


def load_digits_split():
    """sklearn's 8x8 digits, scaled to [0, 1], NHWC; a stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., None]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)


def build_model():
    """conv 3x3 -> depthwise 3x3 -> pointwise 1x1 -> max pool -> dense: about 3k parameters."""
    import keras
    return keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2"),
        keras.layers.Conv2D(16, 1, activation="relu", name="pw2"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, name="logits"),
    ], name="digits_cnn")


def int8_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    correct = 0
    for sample, label in zip(x, y):
        q = np.clip(np.round(sample / scale) + zero, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q[None])
        interp.invoke()
        correct += int(interp.get_tensor(out["index"]).argmax() == label)
    return correct / len(y)


def main() -> None:
    import keras
    from tinytrain.frontends.keras import keras_to_int8_tflite

    keras.utils.set_random_seed(SEED)
    x_train, x_test, y_train, y_test = load_digits_split()
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0)
    float_acc = float(model.evaluate(x_test, y_test, verbose=0)[1])

    tflite = keras_to_int8_tflite(model, x_train[:CALIBRATION_SAMPLES])
    model.save(HERE / "digits_cnn.keras")
    (HERE / "digits_cnn.tflite").write_bytes(tflite)
    np.savez_compressed(HERE / "digits_test.npz", x=x_test.astype(np.float32), y=y_test)

    print(f"parameters: {model.count_params()}")
    print(f"float test accuracy: {float_acc:.4f} ({len(y_test)} digits)")
    print(f"int8 (LiteRT) test accuracy: {int8_accuracy(tflite, x_test, y_test):.4f}")
    print(f"wrote {', '.join(p.name for p in sorted(HERE.glob('digits_*')) if p.suffix != '.py')}")


if __name__ == "__main__":
    main()
