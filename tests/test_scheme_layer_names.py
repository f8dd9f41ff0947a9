"""Schemes name layers as the user named them in Keras (the TFLite converter renames them:
"pw" -> "pw_1_Relu"-like names, the last Dense -> "output"), and `--train` is checked before
the Keras model's int8 conversion starts."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tinytrain.errors import TinyTrainError
from tinytrain.frontends import load_model
from tinytrain.frontends.keras import keras_file_weighted_layers
from tinytrain.training.scheme import bind_scheme, parse_scheme

import keras_models

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def converted():
    model, calib, _ = keras_models.depthwise_separable()
    return model, load_model(model, quantize="int8", calibration=calib)


def test_keras_layer_names_map_to_the_converted_ops(converted):
    model, g = converted
    weighted = [op.name for op in g.ops if op.type in ("conv2d", "depthwise_conv2d", "fully_connected")]
    assert len(weighted) == 4
    # every Keras name the converter changed is mapped, onto the op in the same position
    for keras_name, op_name in zip(["stem", "dw", "pw", "head"], weighted):
        assert g.layer_names.get(keras_name, keras_name) == op_name
    assert g.layer_names, "the converter renamed at least one layer"


def test_a_scheme_by_keras_names_equals_the_one_by_op_names(converted, tmp_path):
    _, g = converted
    by_keras = bind_scheme("layers:pw.bias,head", g)
    ir = {k: g.layer_names.get(k, k) for k in ("pw", "head")}
    by_ir = bind_scheme(f"layers:{ir['pw']}.bias,{ir['head']}", g)
    assert by_keras.layers == by_ir.layers
    assert [(n, u.weight, u.bias) for n, u in by_keras.layers.items()] == [(ir["pw"], False, True),
                                                                          (ir["head"], True, True)]
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"layers": ["pw.bias"], "weight_update": [{"layer": "dw", "input_channel_ratio": 0.5}],
                             "classifier": "full"}))
    s = bind_scheme(str(f), g)
    assert s.layers[g.layer_names.get("dw", "dw")].in_channels == 4
    assert s.layers[ir["pw"]].bias and s.layers[ir["head"]].weight


def test_an_unknown_layer_name_lists_the_models(converted):
    _, g = converted
    with pytest.raises(TinyTrainError, match=r"no layer with weights named 'pw2'; the model's are .*pw"):
        bind_scheme("layers:pw2", g)


def test_scheme_errors_come_before_the_conversion(tmp_path):
    """A typo in --train fails with exit 2 before TensorFlow is even imported."""
    model, calib, _ = keras_models.depthwise_separable()
    path = tmp_path / "m.keras"
    model.save(path)
    np.savez(tmp_path / "calib.npz", x=calib)
    assert keras_file_weighted_layers(path) == ["stem", "dw", "pw", "head"]
    probe = ("import sys\nfrom tinytrain.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    print('exit', e.code, 'tensorflow' in sys.modules)\n")
    for scheme, message in (("layers:pw,hed", "no layer with weights named 'hed'"),
                            ("last:9", "the model has only 4 layers with weights"),
                            ("lst:2", "expected full, last:K")):
        proc = subprocess.run([sys.executable, "-c", probe, "inspect", str(path), "--quantize", "int8",
                               "--calibration", str(tmp_path / "calib.npz"), "--train", scheme],
                              capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip() == "exit 2 False", proc.stdout + proc.stderr
        assert message in proc.stderr


def test_layers_scheme_syntax():
    spec = parse_scheme("layers:conv4.bias, classifier ,dw.weight")
    assert spec.layers == [("conv4", "bias"), ("classifier", "all"), ("dw", "weight")]
    with pytest.raises(TinyTrainError, match="empty layer name"):
        parse_scheme("layers:conv4,.bias")
