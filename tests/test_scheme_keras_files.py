"""The issue's own example: a CNN whose layers are named conv1, conv2 and classifier; the
TFLite converter renames them conv2_1_Relu and output. A scheme names them as the user
did, from the CLI; and a typo in --train is refused before TensorFlow is imported for a
legacy .h5 file too (a .keras file: tests/test_scheme_layer_names.py)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from cli_run import tinytrain_in_process

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras
    tmp = tmp_path_factory.mktemp("keras-names")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((14, 14, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, name="classifier")])
    model.save(tmp / "m.keras")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp / "m.h5")
    np.savez(tmp / "calib.npz", x=np.random.default_rng(0).uniform(0, 1, (32, 14, 14, 1)).astype(np.float32))
    return tmp


def test_a_scheme_names_the_keras_layers_the_converter_renamed(saved):
    proc = tinytrain_in_process("inspect", saved / "m.keras", "--quantize", "int8", "--calibration",
                                saved / "calib.npz", "--train", "layers:conv2.bias,classifier", "--json")
    assert proc.returncode == 0, proc.stderr
    trained = json.loads(proc.stdout)["training"]["trained"]
    assert trained == ["conv2_1_Relu: bias", "output: weight + bias"]


@pytest.mark.parametrize("scheme, message", [
    ("layers:conv3", "no layer with weights named 'conv3'; the model's are conv1, conv2, classifier"),
    ("last:4", "the model has only 3 layers with weights"),
])
def test_an_h5_files_scheme_is_checked_before_tensorflow_loads(saved, scheme, message):
    probe = ("import sys\nfrom tinytrain.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    print('exit', e.code, 'tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", probe, "inspect", str(saved / "m.h5"), "--quantize", "int8",
                           "--calibration", str(saved / "calib.npz"), "--train", scheme],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "exit 2 False", proc.stdout + proc.stderr
    assert message in proc.stderr
