"""int8 MEAN over H, W (global average pooling): the numpy reference and the C kernel against
LiteRT's reference kernel, on every combination that could select a different code path in
LiteRT (keep_dims, equal or differing input/output scale and zero point, the rescale whose
shift LiteRT clamps) and on several spatial sizes each; then on Keras's default
GlobalAveragePooling2D through the real converter.

LiteRT 2.3's reference int8 MEAN runs reference_ops::QuantizedMeanOrSum for all of these
(the 4-D keep_dims kernel and the equal-quantization integer mean of older TFLite are
gone); the multiplier is QuantizeMultiplier(in_scale / out_scale) with 1/count folded in by
an integer division, which tinytrain.quant.mean_multiplier reproduces. The hand-built
models of tflite_models.mean_tflite reach each case with exactly chosen quantization."""
import zlib
from ctypes import byref

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from tinytrain import quant  # noqa: E402
from tinytrain.frontends.tflite import load_tflite  # noqa: E402
from tinytrain.refops import run_graph  # noqa: E402

import ckernels as ck  # noqa: E402
import tflite_models as tm  # noqa: E402

# (input (scale, zero point), output (scale, zero point))
QUANT_CASES = {
    "equal": ((0.05, 3), (0.05, 3)),
    "scale_differs": ((0.05, 3), (0.0213, 3)),
    "zero_point_differs": ((0.05, -7), (0.05, 12)),
    "both_differ": ((0.031, -20), (0.0117, 5)),
    "output_coarser": ((0.01, 0), (0.037, -3)),
    "output_much_finer": ((0.048, 1), (0.004, -2)),        # in/out = 12: a left shift
    # in/out = 3e-8: QuantizeMultiplier's shift is -24, so LiteRT clamps the 1/count shift
    # to 31 - 24 = 7 for count >= 256 (the 16x16 shape); every output is then the zero point.
    "shift_clamped": ((0.001, 4), (0.001 / 3e-8, -9)),
}
SHAPES = [(5, 5, 6), (6, 6, 4), (7, 7, 3), (12, 5, 5), (3, 4, 7), (1, 1, 4), (16, 16, 3)]
N_SAMPLES = 40


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="global_avg_pool_s8.c", build_dir=tmp_path_factory.mktemp("ck_mean"))


def _samples(rng, shape, zero_point):
    for s in range(N_SAMPLES):
        if s == 0:
            yield np.full(shape, -128, np.int8)
        elif s == 1:
            yield np.full(shape, 127, np.int8)
        elif s == 2:                     # values near the zero point: means near zero, both signs
            yield np.clip(zero_point + rng.integers(-3, 4, shape), -128, 127).astype(np.int8)
        else:
            yield rng.integers(-128, 128, shape, dtype=np.int8)


def _pool_op(graph):
    (op,) = [op for op in graph.ops if op.type == "global_avg_pool"]
    return op


def _check_against_litert(lib, tflite_bytes, seed):
    """numpy (run_graph on the imported graph) and the C kernel equal LiteRT on random
    inputs; returns LiteRT's outputs."""
    interp = tm.reference_interpreter(tflite_bytes)
    graph = load_tflite(tflite_bytes)
    pool = _pool_op(graph)
    q = quant.global_avg_pool_params(graph, pool)
    x_t = graph.tensors[graph.inputs[0]]
    rng = np.random.default_rng(seed)
    outs = []
    for i, x in enumerate(_samples(rng, x_t.shape, x_t.zero_point)):
        want = tm.invoke(interp, [x]).reshape(-1)
        got_np = run_graph(graph, {graph.inputs[0]: x})[graph.outputs[0]].reshape(-1)
        np.testing.assert_array_equal(got_np, want, err_msg=f"numpy, sample {i}")
        got_c = np.zeros(x_t.shape[-1], np.int8)
        lib.tt_global_avg_pool_s8(ck.ptr(np.ascontiguousarray(x)), byref(ck.dims(x_t.shape)),
                                  byref(ck.requant(q)), ck.ptr(got_c))
        np.testing.assert_array_equal(got_c, want, err_msg=f"C kernel, sample {i}")
        outs.append(want)
    return np.concatenate(outs)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", sorted(QUANT_CASES))
@pytest.mark.parametrize("keep_dims", [False, True], ids=["reduced", "keep_dims"])
def test_mean_equals_litert_reference(lib, keep_dims, case, shape):
    in_q, out_q = QUANT_CASES[case]
    data = tm.mean_tflite((1, *shape), [1, 2], keep_dims, in_q, out_q)
    outs = _check_against_litert(lib, data, seed=zlib.crc32(f"{keep_dims}{case}{shape}".encode()))
    if case == "shift_clamped":
        assert np.all(outs == out_q[1])
    else:                                # the comparison means something only if outputs vary
        assert len(np.unique(outs)) > 5


def test_shift_clamp_is_reached():
    """The clamp case above does exercise LiteRT's clamp of the 1/count shift."""
    (in_s, _), (out_s, _) = QUANT_CASES["shift_clamped"]
    _, shift = quant.quantize_multiplier(in_s / out_s)
    count = 16 * 16
    assert count.bit_length() - 1 > 31 + shift
    mult, total = quant.mean_multiplier(in_s, out_s, count)
    assert total == -31 and 0 < mult < 2**31


def test_mean_multiplier_folds_the_count_as_litert():
    # in/out = 1: QuantizeMultiplier gives 2^30, shift 1; 1/25 with k = 4: (2^30 << 4) // 25
    assert quant.mean_multiplier(0.5, 0.5, 25) == ((1 << 34) // 25, 1 - 4)
    assert quant.mean_multiplier(0.5, 0.5, 1) == quant.quantize_multiplier(1.0)
    # the old fold in double (in / (count * out)) rounds the other way here
    assert quant.mean_multiplier(0.5, 0.5, 25) != quant.quantize_multiplier(1 / 25)


@pytest.mark.parametrize("hw", [(5, 5), (6, 6), (7, 7), (12, 5), (3, 4)], ids=lambda s: "x".join(map(str, s)))
def test_keras_global_average_pooling_equals_litert(lib, hw):
    """Keras's default GlobalAveragePooling2D (MEAN, keep_dims=False, scales set by the
    converter's calibration) through the real converter."""
    import keras
    keras.utils.set_random_seed(hw[0] * 31 + hw[1])
    inp = keras.Input((*hw, 6))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp))
    rng = np.random.default_rng(hw[0] * 7 + hw[1])
    data = tm.int8_tflite(model, [rng.uniform(-1.0, 1.0, (64, *hw, 6)).astype(np.float32)])
    assert tm.op_types(tm.reference_interpreter(data)) == ["MEAN"]
    graph = load_tflite(data)
    x_t, y_t = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert (x_t.scale, x_t.zero_point) != (y_t.scale, y_t.zero_point)
    outs = _check_against_litert(lib, data, seed=hw[0] * 100 + hw[1])
    assert len(np.unique(outs)) > 5
