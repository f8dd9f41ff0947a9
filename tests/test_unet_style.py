"""A small U-Net-style model (tests/real_models.unet_style: encoder, Conv2DTranspose and
UpSampling2D nearest / bilinear decoders, skip connections joined by Concatenate, Cropping2D):
converted with the converter's default dynamic batch it imports, plans and runs bit-exact
against LiteRT's reference kernels on 50 inputs; in float32 it matches TensorFlow; training
with `last:2` and a bias-only scheme (gradients through the concatenations, the transposed
convolution, both resizes and the crop) takes GradientTape's gradients in float32 (rtol 1e-4)
and steps like the numpy simulation in int8."""
import numpy as np
import pytest

import tinytrain

import real_models as rm
import tflite_models as tm

SHAPE = (16, 16, 3)


@pytest.fixture(scope="module")
def model():
    return rm.unet_style()


def test_int8_converter_default_runs_bit_exact_on_50_inputs(model):
    calib = np.random.default_rng(23).uniform(-1, 1, (64,) + SHAPE).astype(np.float32)
    data = tm.int8_tflite(model, [calib])
    compiled = tinytrain.compile(data)
    types = [op.type for op in compiled.graph.ops]
    assert {"transpose_conv", "resize_nearest", "resize_bilinear", "strided_slice", "concatenation"} <= set(types)
    assert compiled.memory["arena_bytes"] > 0
    interp = tm.reference_interpreter(tm.reference_runnable(data))
    x = np.random.default_rng(24).integers(-128, 128, (50, 1) + SHAPE).astype(np.int8)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(compiled.run(x), want)


def test_float_matches_tensorflow(model):
    x = np.random.default_rng(25).standard_normal((10,) + SHAPE).astype(np.float32)
    np.testing.assert_allclose(tinytrain.compile(model).run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme,trained", [
    ("last:2", ["dec1.weight", "dec1.bias", "head.weight", "head.bias"]),
    ("bias-only:6", ["enc1.bias", "enc2.bias", "mid.bias", "dec2.bias", "dec1.bias", "head.bias"])])
def test_float_training_step_equals_gradient_tape(model, tmp_path, scheme, trained):
    x = np.random.default_rng(26).standard_normal((1,) + SHAPE).astype(np.float32)
    steps = rm.float_step_gradients(model, scheme, x, 3, tmp_path)
    assert sorted(steps) == sorted(trained)
    for name, (got, want) in steps.items():
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=name)


@pytest.mark.parametrize("scheme", ["last:2", "bias-only:6"])
def test_int8_steps_equal_the_simulation(model, tmp_path, scheme):
    calib = np.random.default_rng(27).uniform(-1, 1, (64,) + SHAPE).astype(np.float32)
    compiled = tinytrain.compile(model, quantize="int8", calibration=calib, scheme=scheme, lr=0.05,
                                 update="nearest", passes=False)
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    x = np.clip(np.round(calib[:4] / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    labels = [0, 1, 2, 3]
    sim = compiled.simulator()
    with compiled.host_trainer(tmp_path) as ht:
        losses = [loss for loss, _ in ht.train_many(x.reshape(4, 1, *SHAPE), labels)]
        params = ht.params()
    np.testing.assert_allclose(losses, [sim.step(xi[None], y).loss for xi, y in zip(x, labels)], rtol=1e-5)
    for name, value in params.items():
        d = np.abs(value.astype(np.int64) - sim.params[name].astype(np.int64))
        assert d.max() <= 1 and (d == 0).mean() >= 0.98, name


def test_float_tflite_from_the_converter_matches_tensorflow(model):
    """The converter's float32 output (dynamic batch, float TILE) through the .tflite reader."""
    import tensorflow as tf
    from tinytrain.frontends.tf_quiet import quiet_tensorflow
    with quiet_tensorflow():
        data = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    compiled = tinytrain.compile(data)
    assert "resize_nearest" in [op.type for op in compiled.graph.ops]
    x = np.random.default_rng(28).standard_normal((6,) + SHAPE).astype(np.float32)
    np.testing.assert_allclose(compiled.run(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
