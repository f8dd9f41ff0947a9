"""concatenation (tinytrain/ops/concatenation.py) in int8: equal to LiteRT's reference kernel
(a copy) along every axis of NHWC and of (1, F) tensors, with two and three inputs, numpy
and C; int8 inputs quantized unlike the output are refused, as LiteRT's Prepare refuses them."""
import numpy as np
import pytest

from tinytrain import refops
from tinytrain.errors import UnsupportedError
from tinytrain.frontends.tflite import load_tflite
from tinytrain.ops import unit

import ckernels as ck
import tflite_models as tm

Q = (0.05, 3)
CASES = [  # input shapes, axis
    ([(1, 4, 5, 3), (1, 4, 5, 2)], 3),
    ([(1, 4, 5, 3), (1, 4, 5, 1), (1, 4, 5, 6)], -1),
    ([(1, 4, 5, 3), (1, 2, 5, 3)], 1),
    ([(1, 4, 2, 3), (1, 4, 5, 3), (1, 4, 1, 3)], 2),
    ([(1, 7), (1, 3)], 1),
]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="concatenation_s8.c", build_dir=tmp_path_factory.mktemp("ck_cat"))


@pytest.mark.parametrize("k", range(len(CASES)))
def test_int8_equals_litert(lib, k):
    shapes, axis = CASES[k]
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    data = tm.op_tflite("CONCATENATION", [dict(shape=s, q=Q) for s in shapes], dict(shape=out_shape, q=Q), {"axis": axis})
    rng = np.random.default_rng(k)
    xs = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
    want = tm.invoke(tm.reference_interpreter(data), xs)
    g = load_tflite(data)
    (op,) = g.ops
    np.testing.assert_array_equal(refops.run_graph(g, dict(zip(g.inputs, xs)))[g.outputs[0]], want)
    outer, blocks, out_block, offsets = unit("concatenation").geometry(g, op)
    got = np.zeros(want.size, np.int8)
    for x, block, off in zip(xs, blocks, offsets):
        x = np.ascontiguousarray(x.reshape(-1))
        lib.tt_concatenation_s8(ck.ptr(x), outer, block, out_block, off, ck.ptr(got))
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_inputs_quantized_unlike_the_output_are_refused_as_litert_does():
    data = tm.op_tflite("CONCATENATION", [dict(shape=(1, 2, 2, 3), q=Q), dict(shape=(1, 2, 2, 3), q=(0.07, 3))],
                        dict(shape=(1, 2, 2, 6), q=Q), {"axis": 3})
    with pytest.raises(RuntimeError):
        tm.reference_interpreter(data)
    with pytest.raises(UnsupportedError, match="quantized differently"):
        load_tflite(data)
