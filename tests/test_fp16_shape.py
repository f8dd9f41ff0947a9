"""FP16 forms of the shape ops (issue 13's coverage): concatenation, strided slice, nearest and
bilinear resize, transposed convolution. Each portable _f16 kernel equals its numpy model
(tests/f16_cases_shape.py) byte for byte on the emulated Cortex-M55 and Cortex-M4F; a training
graph holding them all: the host build equals the numpy reference step after step (fp16 and
mixed, a dynamic loss scale), and its FP16 gradients are within 2% of TensorFlow's FP32
GradientTape; a float16 concatenation holding one tensor twice is refused naming the layer."""
import numpy as np
import pytest

import tinytrain
from tinytrain.errors import UnsupportedError
from tinytrain.ir import Op

import f16_cases
import f16_cases_shape
from f16_device import assert_device_equals_simulation
from f16_tape import assert_step_matches_tape
from graphs import GraphBuilder
from kernel_harness import have_tools, run_cases
from test_fp16 import assert_half_params_equal, run_both


def shape_net(seed=0):
    """conv -> crop (strided slice) -> conv -> concat(conv, a channel-strided slice of the crop)
    along channels -> concat(that, the crop, a constant) along width -> nearest 2x upsampling -> conv
    (stride 2) -> bilinear resize -> transposed conv (frozen, stride 2, SAME) -> conv -> mean
    -> dense."""
    b = GraphBuilder("f16shape", (1, 8, 8, 3), seed)
    b.conv("conv1", 8, act="relu")
    crop = b.unary("crop", "strided_slice", (1, 6, 6, 8), begin=(1, 1, 0), stride=(1, 1, 1))
    c2 = b.conv("conv2", 4, act="relu")
    b.last = crop
    sub = b.unary("odd", "strided_slice", (1, 6, 6, 4), begin=(0, 0, 1), stride=(1, 1, 2))
    cat = b.concat("cat", [c2, sub], axis=-1)
    edge = b.const("edge", 0.5 * np.random.default_rng(seed + 100).standard_normal((1, 6, 2, 8)))
    b.concat("wide", [cat, crop, edge], axis=2)                                   # (1, 6, 14, 8)
    b.unary("up", "resize_nearest", (1, 12, 28, 8), align_corners=False, half_pixel_centers=False, exact=True)
    b.conv("conv3", 6, stride=2, act="relu")                                      # (1, 6, 14, 6)
    b.unary("bi", "resize_bilinear", (1, 5, 7, 6), align_corners=False, half_pixel_centers=True)
    _, h, w, c = b.tensors[b.last].shape
    wt = b._param("tconv.weight", (5, 3, 3, c), 1.0 / np.sqrt(9 * c))
    bias = b._param("tconv.bias", (5,), 0.1)
    out = b._out("tconv", (1, 2 * h, 2 * w, 5))
    b.ops.append(Op("tconv", "transpose_conv", [b.last, wt, bias], [out],
                    {"stride": (2, 2), "pad": (0, 1, 0, 1), "activation": "relu"}))
    b.last = out
    b.conv("conv4", 6, stride=2, act="relu")
    b.gap_flatten()
    b.dense("fc", 5)
    return b.build("f16shape")


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_kernels_equal_their_numpy_model_on_the_board(tmp_path, board):
    if not have_tools():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm missing")
    cases = f16_cases_shape.shape_cases(helium=board == "mps3-an547")
    results = run_cases(board, cases, tmp_path, kernels=f16_cases.kernels())
    for r in results:
        assert r.ref_expected, r.name
        assert r.guards_ok, r.name
    helium = [r.name for r in results if r.name.endswith("Helium")]
    assert len(helium) == (18 if board == "mps3-an547" else 0)


def _types(m):
    return {op.type for op in m.graph.ops}


@pytest.mark.parametrize("precision,scale,momentum", [("fp16", 1.0, False), ("mixed", 64.0, True),
                                                      ("fp16", "dynamic", False)])
def test_host_build_equals_numpy_reference_bit_for_bit(precision, scale, momentum):
    g = shape_net()
    m = tinytrain.compile(g, scheme="full", precision=precision, loss_scale=scale, momentum=momentum,
                          momentum_value=0.9 if momentum else 0.0, lr=0.05, passes=False)
    assert {"concatenation", "strided_slice", "resize_nearest", "resize_bilinear", "transpose_conv"} <= _types(m)
    for name in ("crop", "cat", "wide", "up", "bi", "tconv"):
        assert m.graph.tensors[name].dtype == "float16", name
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((8, 1, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 5, 8)
    sim, params = run_both(m, xs, labels)          # equal losses, step after step
    assert_half_params_equal(m, sim, params)


@pytest.mark.parametrize("board,precision,scale", [("mps3-an547", "fp16", 1.0), ("mps2-an386", "mixed", "dynamic")])
def test_device_training_equals_numpy_reference(board, precision, scale, tmp_path):
    """Trained over the serial link on the emulated boards (the Cortex-M55 runs the Helium
    transposed convolution, the Cortex-M4F the portable kernels on its integer conversions):
    the losses and every trained parameter equal the numpy reference's bits."""
    if not have_tools():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm missing")
    m = tinytrain.compile(shape_net(), scheme="full", board=board, precision=precision, loss_scale=scale, lr=0.05)
    helium = [op.type for op in m.graph.ops if op.attrs.get("f16_variant") == "mve"]
    assert ("transpose_conv" in helium) == (board == "mps3-an547")
    rng = np.random.default_rng(4)
    n = 6
    xs = rng.standard_normal((n, 8 * 8 * 3)).astype(np.float32)
    labels = rng.integers(0, 5, n)
    sim, device = assert_device_equals_simulation(m, xs, labels, tmp_path / "fw")
    assert any((sim.params[n].view(np.uint16) != m.graph.tensors[n].data.view(np.uint16)).any()
               for n in device)                 # the parameters moved


def test_fp16_gradients_against_gradient_tape():
    """The FP16 step's weight gradients against TensorFlow's FP32 gradients of the same
    (half-rounded) weights: within 2% of the largest gradient of each tensor."""
    g = shape_net()
    m = tinytrain.compile(g, scheme="full", precision="fp16", lr=0.0, passes=False)
    x = np.random.default_rng(5).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float16)
    res = assert_step_matches_tape(g, m, x, 1)
    assert "conv1.weight" in res.grads and not any(n.startswith("tconv") for n in res.grads)   # tconv: frozen


def test_a_float16_concatenation_of_one_tensor_twice_is_refused_naming_the_layer():
    b = GraphBuilder("twice", (1, 4, 4, 3), 0)
    b.conv("conv1", 4, act="relu")
    b.concat("both", [b.last, b.last], axis=-1)
    b.gap_flatten()
    b.dense("fc", 3)
    g = b.build("twice")
    tinytrain.compile(g, scheme="full", passes=False)            # float32 trains it
    with pytest.raises(UnsupportedError, match="both.*float16 concatenation holding one tensor twice"):
        tinytrain.compile(b.build("twice"), scheme="full", precision="fp16")
