"""tt_expf / tt_logf (firmware/include/tt_math.h) and their numpy twin (tinytrain.ieee_math):
the same bits on a million inputs spread over the whole float range, within 1 ulp of
math.exp / math.log, and the softmax cross-entropy kernels equal the numpy simulation's
(tinytrain.training.vjp) bit for bit. The C libraries themselves do not agree (newlib's
expf on the Cortex-M4F vs glibc's): that is why the kernels no longer call them."""
import ctypes

import numpy as np
import pytest

import ckernels as ck
from tinytrain import ieee_math
from tinytrain.training import vjp

F32 = np.float32

WRAPPERS = """
#include "tt_math.h"
void w_expf(const float *x, int n, float *y) { int i; for (i = 0; i < n; ++i) y[i] = tt_expf(x[i]); }
void w_logf(const float *x, int n, float *y) { int i; for (i = 0; i < n; ++i) y[i] = tt_logf(x[i]); }
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck_math")
    src = d / "math_wrappers.c"
    src.write_text(WRAPPERS)
    lib = ck.load_kernels(extra_sources=[src], pattern="softmax_cross_entropy_*.c", build_dir=d)
    for name in ("w_expf", "w_logf"):
        ck.declare(lib, name, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
    ck.declare(lib, "tt_softmax_cross_entropy_s8", ctypes.c_void_p, ctypes.POINTER(ck.TtActQuant),
               ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, restype=ctypes.c_float)
    ck.declare(lib, "tt_softmax_cross_entropy_f32", ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32,
               ctypes.c_void_p, restype=ctypes.c_float)
    return lib


def c_call(lib, name, x):
    x = np.ascontiguousarray(x, F32)
    y = np.empty_like(x)
    getattr(lib, name)(x.ctypes.data, len(x), y.ctypes.data)
    return y


# every 4099th float32 bit pattern (both signs, subnormals, inf, nan), and the specials
INPUTS = np.concatenate([np.arange(0, 2 ** 32, 4099, dtype=np.uint64).astype(np.uint32).view(F32),
                         np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 88.72283, 88.72284, -103.97207,
                                   -103.97209, 1e-45, 1.0, 2.0], F32)])


@pytest.mark.parametrize("name", ["expf", "logf"])
def test_c_and_numpy_give_the_same_bits(lib, name):
    c = c_call(lib, "w_" + name, INPUTS)
    p = getattr(ieee_math, name)(INPUTS)
    same = (c.view(np.uint32) == p.view(np.uint32)) | (np.isnan(c) & np.isnan(p))
    assert same.all(), INPUTS[~same][:5]


@pytest.mark.parametrize("name", ["expf", "logf"])
def test_within_one_ulp_of_the_exact_result(name):
    y = getattr(ieee_math, name)(INPUTS)
    with np.errstate(all="ignore"):
        exact = (np.exp if name == "expf" else np.log)(INPUTS.astype(np.float64))
    normal = np.isfinite(exact) & (np.abs(exact) >= np.finfo(F32).tiny) & (np.abs(exact) <= np.finfo(F32).max)
    ulp = np.spacing(np.abs(exact[normal]).astype(F32)).astype(np.float64)
    err = np.abs(y[normal].astype(np.float64) - exact[normal]) / ulp
    assert err.max() < 1.0, err.max()
    assert (y[normal] == exact[normal].astype(F32)).mean() > 0.99      # correctly rounded nearly always
    # the specials as IEEE defines them
    special = ieee_math.expf(np.array([np.inf, -np.inf, 0.0, 100.0, -200.0], F32))
    assert special.tolist() == [np.inf, 0.0, 1.0, np.inf, 0.0]
    special = ieee_math.logf(np.array([1.0, 0.0, np.inf], F32))
    assert special.tolist() == [0.0, -np.inf, np.inf] and np.isnan(ieee_math.logf(F32(-1.0)))


def test_softmax_cross_entropy_kernels_equal_the_simulation_bit_for_bit(lib):
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(2, 40))
        label = int(rng.integers(0, n))
        q = rng.integers(-128, 128, size=n).astype(np.int8)
        scale = F32(10.0 ** rng.uniform(-3, 0.5))
        grad = np.zeros(n, F32)
        loss = lib.tt_softmax_cross_entropy_s8(q.ctypes.data, ck.act_quant(scale, 7), n, label, grad.ctypes.data)
        loss_np, grad_np = vjp.softmax_cross_entropy_s8(q, scale, label)
        assert F32(loss) == F32(loss_np), trial
        np.testing.assert_array_equal(grad.view(np.uint32), grad_np.view(np.uint32))
        z = (rng.standard_normal(n) * 10 ** rng.uniform(-1, 1.5)).astype(F32)
        loss = lib.tt_softmax_cross_entropy_f32(z.ctypes.data, n, label, grad.ctypes.data)
        loss_np, grad_np = vjp.softmax_cross_entropy(z, label)
        assert F32(loss) == F32(loss_np), trial
        np.testing.assert_array_equal(grad.view(np.uint32), grad_np.view(np.uint32))


def test_sequential_sum_is_the_c_loops_order():
    x = np.array([1e8, 1.0, -1e8, 1.0] * 3 + [0.1] * 20, F32)
    acc = F32(0)
    for v in x:
        acc = F32(acc + v)
    assert ieee_math.sum_sequential(x) == acc
    assert acc != F32(np.sum(x))         # numpy's own (pairwise) sum would differ here
