"""Frontends register activation tensors in schedule order (a tensor after the tensors its
producer reads): the training program and the planner walk graph.activations() in that
order. The .tflite frontend used to register the pooled tensor of a MEAN with
keep_dims=False after the reshape that reads it, so `inspect --train` on any model with
Keras's default GlobalAveragePooling2D died with a KeyError traceback."""
import json

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

import keras_models as km  # noqa: E402
from cli_run import tinytrain, tinytrain_in_process  # noqa: E402
import tflite_models as tm  # noqa: E402
from conftest import REFERENCE_MODELS  # noqa: E402
from tinytrain.frontends import load_model  # noqa: E402
from tinytrain.training.memory import memory_report  # noqa: E402
from tinytrain.training.program import build_program  # noqa: E402
from tinytrain.training.reorder import reorder_for_scheme  # noqa: E402
from tinytrain.training.scheme import parse_scheme  # noqa: E402
from tinytrain.training.simulate import Trainer  # noqa: E402

SCHEMES = ["full", "last:1", "last:2", "bias-only:1", "bias-only:2"]


def assert_schedule_order(graph):
    position = {t.name: i for i, t in enumerate(graph.activations())}
    for op in graph.ops:
        for out in op.outputs:
            for inp in op.inputs:
                if inp in position:
                    assert position[inp] < position[out], (
                        f"{graph.name}: {out!r} (written by {op.name!r}) is registered before "
                        f"its input {inp!r}")


@pytest.fixture(scope="module")
def gap_tflite(tmp_path_factory) -> bytes:
    """conv -> Keras's default GlobalAveragePooling2D (MEAN, keep_dims=False) -> dense, int8."""
    import keras
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3)(x))
    calib = np.random.default_rng(3).uniform(-1, 1, (32, 8, 8, 3)).astype(np.float32)
    return tm.int8_tflite(model, [calib])


@pytest.mark.parametrize("keep_dims", [False, True])
def test_tflite_mean_registers_tensors_in_schedule_order(keep_dims):
    graph = load_model(tm.mean_tflite((1, 5, 5, 3), [1, 2], keep_dims, (0.05, 0), (0.03, 1)))
    assert [op.type for op in graph.ops] == ["global_avg_pool"] + ([] if keep_dims else ["reshape"])
    assert_schedule_order(graph)


def test_keras_and_reference_frontends_register_tensors_in_schedule_order(gap_tflite, tte_models):
    assert_schedule_order(load_model(gap_tflite))
    for name in ("mlp", "pool_softmax", "residual_block"):      # the fixtures that build without training
        model, _, _ = km.ALL[name]()
        assert_schedule_order(load_model(model))
    for name in REFERENCE_MODELS:
        assert_schedule_order(load_model(tte_models / f"{name}.json"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_training_program_of_global_average_pooling_model(gap_tflite, scheme):
    graph = load_model(gap_tflite)
    graph, bound = reorder_for_scheme(graph, parse_scheme(scheme))
    prog = build_program(graph, bound)
    # the reshape after the pool is a view of the pooled buffer
    reshape = next(op for op in prog.graph.ops if op.type == "reshape")
    assert prog.tensor_buffer[reshape.outputs[0]] == prog.tensor_buffer[reshape.inputs[0]]
    assert memory_report(prog)["arena_bytes"] > 0
    x = np.random.default_rng(0).integers(-128, 128, (1, 8, 8, 3), dtype=np.int8)
    result = Trainer(prog).step(x, label=1)
    assert np.isfinite(result.loss)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cli_inspect_train_on_global_average_pooling_model(gap_tflite, tmp_path, scheme):
    path = tmp_path / "gap.tflite"
    path.write_bytes(gap_tflite)
    # every scheme in process (an exception would be re-raised); one as a real process
    run = tinytrain if scheme == "last:1" else tinytrain_in_process
    proc = run("inspect", path, "--train", scheme, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["training"]["scheme"] == scheme and data["memory"]["arena_bytes"] > 0
