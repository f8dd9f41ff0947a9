"""The predicted class (firmware/include/tt_argmax.h) and its numpy twin (tinytrain.predict):
the same class for every output, ties broken fairly instead of towards the lowest index."""
import ctypes

import numpy as np
import pytest

import ckernels as ck
from tinytrain.predict import predicted_class

WRAPPERS = """
#include "tt_argmax.h"
void w_argmax_s8(const int8_t *y, int rows, int n, uint32_t *out)
{ int r; for (r = 0; r < rows; ++r) out[r] = tt_argmax_s8(y + r * n, (uint32_t)n); }
void w_argmax_f32(const float *y, int rows, int n, uint32_t *out)
{ int r; for (r = 0; r < rows; ++r) out[r] = tt_argmax_f32(y + r * n, (uint32_t)n); }
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck_argmax")
    src = d / "argmax_wrappers.c"
    src.write_text(WRAPPERS)
    lib = ck.load_kernels(extra_sources=[src], pattern="relu_s8.c", build_dir=d)
    for name in ("w_argmax_s8", "w_argmax_f32"):
        ck.declare(lib, name, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    return lib


def c_classes(lib, y):
    y = np.ascontiguousarray(y)
    out = np.empty(len(y), np.uint32)
    name = "w_argmax_s8" if y.dtype == np.int8 else "w_argmax_f32"
    getattr(lib, name)(y.ctypes.data, len(y), y.shape[1], out.ctypes.data)
    return out.astype(np.int64)


def outputs(dtype, rows=20000, n=10, seed=0):
    """Outputs drawn from few values, so that most rows have ties for the top (of 2 to n)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(-3, 3, (rows, n))
    if dtype == np.int8:
        return y.astype(np.int8)
    y = y.astype(np.float32)
    y[rng.random(y.shape) < 0.02] = np.nan              # NaN never wins (unless first), ties nothing
    y[rng.random(y.shape) < 0.02] = -0.0                 # -0 ties +0
    return y


@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_c_and_numpy_pick_the_same_class(lib, dtype):
    y = outputs(dtype)
    assert (c_classes(lib, y) == predicted_class(y)).all()
    one = outputs(dtype, rows=50, n=1)
    assert (c_classes(lib, one) == 0).all() and (predicted_class(one) == 0).all()


def test_the_largest_output_wins_and_ties_are_shared_fairly():
    y = outputs(np.int8, rows=60000, n=4, seed=1)
    got = predicted_class(y)
    assert (y[np.arange(len(y)), got] == y.max(axis=1)).all()
    # rows whose top is tied by exactly classes 0 and 3: each wins about half of them, not class 0 always
    top = y == y.max(axis=1, keepdims=True)
    both = top[:, 0] & top[:, 3] & ~top[:, 1] & ~top[:, 2]
    share = np.mean(got[both] == 3)
    assert both.sum() > 2000 and 0.45 < share < 0.55, (both.sum(), share)
    # the same output always gives the same class
    assert (predicted_class(np.repeat(y[:100], 3, axis=0)) == np.repeat(got[:100], 3)).all()
