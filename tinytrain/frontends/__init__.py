"""Model frontends: every supported format -> the graph IR (tinytrain/ir.py).

    load_model(source)  dispatches on the source:
      keras.Model, "*.keras", "*.h5"   -> keras.load_keras   (float32, or int8 with quantize="int8")
      bytes, "*.tflite"                -> tflite.load_tflite (int8 TFLite flatbuffer)
      "*.json" (+ "*.npz" beside it)   -> reference.load_reference (the paper's int8 models)

TensorFlow is imported only by the Keras frontend, and only when it is used.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TinyTrainError
from ..ir import Graph

KERAS_SUFFIXES = (".keras", ".h5")


def _is_keras_model(obj) -> bool:
    # Avoid importing keras just to test the type: look at the class hierarchy's names.
    return any(c.__module__.startswith("keras") and c.__name__ == "Model" for c in type(obj).__mro__)


def load_model(source, *, quantize: str | None = None, calibration=None) -> Graph:
    """Import a model as a validated Graph.

    quantize="int8" (Keras sources only) converts with TFLite full-integer quantization,
    calibrated on `calibration` (float32 NHWC samples), then imports the int8 model.
    """
    if quantize not in (None, "int8"):
        raise TinyTrainError(f"unknown quantization {quantize!r} (use None or 'int8')")
    if isinstance(source, (bytes, bytearray, memoryview)):
        _no_quantize(quantize, "a .tflite model")
        from .tflite import load_tflite
        graph = load_tflite(bytes(source))
    elif _is_keras_model(source):
        from .keras import load_keras
        graph = load_keras(source, quantize=quantize, calibration=calibration)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise TinyTrainError(f"model file not found: {path}")
        suffix = path.suffix.lower()
        if suffix in KERAS_SUFFIXES:
            from .keras import load_keras
            graph = load_keras(path, quantize=quantize, calibration=calibration)
        elif suffix == ".tflite":
            _no_quantize(quantize, "a .tflite model")
            from .tflite import load_tflite
            graph = load_tflite(path)
        elif suffix == ".json":
            _no_quantize(quantize, "a reference JSON model")
            from .reference import load_reference
            graph = load_reference(path)
        else:
            raise TinyTrainError(f"{path}: unknown model format {suffix or '(no extension)'!r} "
                                 "(expected .keras, .h5, .tflite or .json)")
    else:
        raise TinyTrainError(f"cannot load a model from a {type(source).__name__}")
    return graph.validate()


def _no_quantize(quantize, what: str) -> None:
    if quantize is not None:
        raise TinyTrainError(f"quantize={quantize!r} applies to Keras models only, not to {what} "
                             "(it is already int8)")


__all__ = ["load_model"]
