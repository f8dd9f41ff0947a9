"""Ops tinytrain does not support keep a clear refusal: Keras Permute (TFLite TRANSPOSE) and
GlobalMaxPooling2D (REDUCE_MAX), as float Keras files and as converted int8 .tflite files:
exit 2, a message naming the layer and the op, no output folder, no traceback."""
import numpy as np
import pytest

import tflite_models as tm
from cli_run import tinytrain_in_process


def _model(kind):
    import keras
    inp = keras.Input((4, 5, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    if kind == "permute":
        h = keras.layers.Permute((2, 1, 3), name="swap_hw")(h)
        h = keras.layers.Flatten()(h)
    else:
        h = keras.layers.GlobalMaxPooling2D(name="max_over_hw")(h)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(h))


@pytest.mark.parametrize("kind,layer,op", [("permute", "swap_hw", "TRANSPOSE"),
                                           ("max", "max_over_hw", "REDUCE_MAX")])
def test_refused_with_exit_2_naming_layer_and_op(tmp_path, kind, layer, op):
    model = _model(kind)
    keras_file = tmp_path / f"{kind}.keras"
    model.save(keras_file)
    calib = np.random.default_rng(0).uniform(-1, 1, (16, 4, 5, 3)).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    assert op in tm.op_types(tm.reference_interpreter(data))
    tflite_file = tmp_path / f"{kind}.tflite"
    tflite_file.write_bytes(data)
    keras_kind = {"permute": "Permute", "max": "GlobalMaxPooling2D"}[kind]
    for path, what in ((keras_file, keras_kind), (tflite_file, op)):
        out = tmp_path / f"out_{path.suffix[1:]}"
        proc = tinytrain_in_process("build", path, "--board", "native", "-o", out)
        assert proc.returncode == 2, proc.stderr
        assert layer in proc.stderr and what in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}")]
