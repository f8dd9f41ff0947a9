"""Issue 9's acceptance on whole architectures: keras.applications MobileNetV2 (alpha 0.35,
96x96) and MobileNetV3Small (96x96: Rescaling MUL/ADD, HARD_SWISH, squeeze-excite MEAN/MUL,
the dynamic-batch Flatten pattern) and a ResNet-style model, quantized with a calibration set
by the converter's default (dynamic batch) settings, import, plan and give bit-identical int8
outputs to LiteRT's reference kernels on 50 inputs; in float32 they match TensorFlow within
1e-5. MobileNetV3Small also trains (`last:2`, `bias-only:6`): float32 steps equal
GradientTape's, int8 QAS steps equal the numpy simulation. (The U-Net-style model is
tests/test_unet_style.py; sequences are tests/test_sequences.py.)"""
import numpy as np
import pytest

import tinytrain

import real_models as rm
import tflite_models as tm

MODELS = {"mobilenet_v2": rm.mobilenet_v2, "mobilenet_v3_small": rm.mobilenet_v3_small,
          "resnet_style": rm.resnet_style}
N_INPUTS = 50


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request):
    model = MODELS[request.param]()
    return request.param, model, rm.cached_int8_tflite(model, rm.calibration(model))


def test_int8_converter_default_imports_plans_and_runs_bit_exact(converted):
    name, model, data = converted
    compiled = tinytrain.compile(data)
    shape = tuple(model.inputs[0].shape[1:])
    assert compiled.graph.tensors[compiled.graph.inputs[0]].shape == (1,) + shape
    assert 0 < compiled.memory["arena_bytes"]
    types = {op.type for op in compiled.graph.ops}
    if name == "mobilenet_v3_small":     # the ops this issue added, all inside one real model
        assert {"mul", "add", "hard_swish", "global_avg_pool"} <= types
    interp = tm.reference_interpreter(data)
    x = np.random.default_rng(97).integers(-128, 128, (N_INPUTS, 1) + shape).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    got = compiled.run(x)
    assert got.shape == want.shape
    mismatches = int((got != want).sum())
    assert mismatches == 0, f"{name}: {mismatches} of {want.size} int8 outputs differ from LiteRT"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float_matches_tensorflow(name):
    model = MODELS[name]()
    shape = tuple(model.inputs[0].shape[1:])
    x = rm.calibration(model, n=4, seed=98)
    np.testing.assert_allclose(tinytrain.compile(model).run(x), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5, err_msg=name)
    assert x.shape[1:] == shape


@pytest.mark.parametrize("scheme", ["last:2", "bias-only:6"])
def test_mobilenet_v3_small_float_training_step_equals_gradient_tape(tmp_path, scheme):
    model = rm.mobilenet_v3_small()
    x = rm.calibration(model, n=1, seed=99)
    steps = rm.float_step_gradients(model, scheme, x, 7, tmp_path)
    n = int(scheme.split(":")[1])
    assert len(steps) == (2 * n if scheme.startswith("last") else n)
    for name, (got, want) in steps.items():
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=name)


@pytest.mark.parametrize("scheme", ["last:2", "bias-only:6"])
def test_mobilenet_v3_small_int8_training_steps_equal_the_simulation(tmp_path, scheme):
    model = rm.mobilenet_v3_small()
    data = rm.cached_int8_tflite(model, rm.calibration(model))
    compiled = tinytrain.compile(data, scheme=scheme, lr=0.05, update="nearest", passes=False)
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    calib = rm.calibration(model, n=3, seed=100)
    x = np.clip(np.round(calib / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    labels = [0, 4, 9]
    sim = compiled.simulator()
    with compiled.host_trainer(tmp_path) as ht:
        losses = [loss for loss, _ in ht.train_many(x.reshape((3,) + inp.shape), labels)]
        params = ht.params()
    np.testing.assert_allclose(losses, [sim.step(xi[None], y).loss for xi, y in zip(x, labels)], rtol=1e-5)
    for name, value in params.items():
        d = np.abs(value.astype(np.int64) - sim.params[name].astype(np.int64))
        assert d.max() <= 1 and (d == 0).mean() >= 0.98, name
