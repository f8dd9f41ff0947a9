"""TensorFlow's output stays off the user's terminal: `--json` stays parsable when a Keras
model is quantized, and the demo's first steps (train on the host, quantize, import) print
only their own lines. Each runs in a fresh process, where TensorFlow's import-time logs
appear."""
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("keras")

from conftest import ROOT  # noqa: E402
from tinytrain.frontends.tf_quiet import quiet_tensorflow  # noqa: E402


def test_quiet_tensorflow_captures_fds_prints_and_warnings(capfd):
    import os
    with quiet_tensorflow() as log:
        os.write(1, b"from C on stdout\n")
        os.write(2, b"from C on stderr\n")
        print("a print")
        warnings.warn("a warning")
    print("after")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == ""
    for line in ("from C on stdout", "from C on stderr", "a print"):
        assert line in log.text()


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(2)
    inp = keras.Input((6, 6, 2))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(3)(x))
    d = tmp_path_factory.mktemp("keras")
    model.save(d / "small.keras")
    np.savez(d / "calib.npz", x=np.random.default_rng(2).uniform(-1, 1, (16, 6, 6, 2)).astype(np.float32))
    return d / "small.keras", d / "calib.npz"


def test_inspect_quantized_keras_json_is_parsable(keras_files):
    model, calib = keras_files
    proc = subprocess.run([sys.executable, "-m", "tinytrain", "inspect", str(model), "--quantize", "int8",
                           "--calibration", str(calib), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [layer["op"] for layer in data["layers"]][:2] == ["conv2d", "global_avg_pool"]
    assert proc.stderr == ""


def test_demo_first_steps_print_no_tensorflow_lines():
    """examples/digits_online (what scripts/demo.sh runs): training the host model on a few
    samples, int8 conversion and import print nothing of TensorFlow's."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "examples" / "digits_online")!r})
        import ondevice
        from tinytrain.frontends import load_model
        from tinytrain.frontends.keras import keras_to_int8_tflite
        d = ondevice.load_data()
        small = ondevice.Data(d.x_train[:48], d.y_train[:48], d.x_test[:8], d.y_test[:8])
        model = ondevice.train_host_model(small)
        graph = load_model(keras_to_int8_tflite(model, small.x_train[:16]))
        print("ops", len(graph.ops))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ops 7"], proc.stdout
    assert proc.stderr == ""
