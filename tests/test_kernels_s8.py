"""The int8 C kernels against the numpy reference (tinytrain.refops), element for element,
on random data with awkward shapes and parameters. refops itself is checked against
LiteRT in test_refops_vs_litert.py."""
import shutil
import subprocess
from ctypes import byref, c_float, c_int8, c_int32, c_void_p

import numpy as np
import pytest

from tinytrain import cflags, quant
from tinytrain.boards import load_board
from tinytrain.fixedpoint import exp_on_negative_values, rounding_divide_by_pot, sat_rounding_doubling_high_mul
from tinytrain.ops.add import add_s8
from tinytrain.ops.conv2d import conv2d_s8
from tinytrain.ops.depthwise_conv2d import depthwise_conv2d_s8
from tinytrain.ops.fully_connected import fully_connected_s8
from tinytrain.ops.mean import global_avg_pool_s8
from tinytrain.ops.pad import pad_s8
from tinytrain.ops.pool2d import avg_pool2d_s8, max_pool2d_s8
from tinytrain.ops.quantize import dequantize_s8_f32, quantize_f32_s8
from tinytrain.ops.relu import relu_s8
from tinytrain.ops.softmax import softmax_s8
from tinytrain.ir import conv_out_size, same_padding

import ckernels as ck

from ckernels import I8, I32, out_hw_of, rand_requant, rand_s8, same_pad


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = ck.load_kernels(pattern="*_s8*.c", build_dir=tmp_path_factory.mktemp("ck_s8"))
    P = c_void_p
    ck.declare(lib, "tt_quantize_f32_s8", P, c_int32, c_float, c_int32, P)
    ck.declare(lib, "tt_dequantize_s8_f32", P, c_int32, c_float, c_int32, P)
    ck.declare(lib, "tt_pad_s8", P, P, c_int32, c_int32, c_int8, P, P)
    return lib


# (H, W, Cin, Cout, kernel, stride, pad ("same"/"valid"/tuple), dilation, act, extreme)
CONV_CASES = [
    (1, 1, 3, 5, (1, 1), (1, 1), "valid", (1, 1), "none", None),        # 1x1 spatial
    (8, 8, 3, 7, (3, 3), (2, 2), "same", (1, 1), "relu", None),         # asymmetric SAME pad
    (7, 9, 5, 6, (3, 3), (1, 1), "same", (1, 1), "relu6", None),
    (9, 9, 4, 3, (3, 3), (1, 1), "same", (2, 2), "none", None),         # dilation
    (6, 5, 2, 4, (2, 3), (2, 1), "valid", (1, 1), "relu", None),
    (5, 5, 3, 2, (3, 3), (1, 1), (2, 0, 1, 2), (1, 1), "none", None),   # explicit odd pad
    (4, 4, 6, 3, (1, 1), (1, 1), "valid", (1, 1), "none", 127),         # extremes
    (4, 4, 6, 3, (3, 3), (2, 2), "same", (1, 1), "none", -128),
    (1, 1, 9, 4, (3, 3), (1, 1), "same", (1, 1), "relu6", None),        # 1x1 with 3x3 kernel
    (6, 6, 3, 5, (3, 3), (1, 1), "same", (1, 1), "none", "tiny"),       # tiny acc: shifts > 0
]


def _conv_setup(case, rng, depthwise):
    h, w, cin, cout, k, stride, pad, dil, act, extreme = case
    if depthwise:
        cout = cin
    if pad == "same":
        pad = same_pad(h, w, k, stride, dil)
    elif pad == "valid":
        pad = (0, 0, 0, 0)
    out_hw = out_hw_of(h, w, k, stride, pad, dil)
    wshape = (k[0], k[1], cin) if depthwise else (cout, k[0], k[1], cin)
    taps = k[0] * k[1] * (1 if depthwise else cin)
    if extreme == "tiny":
        x = rng.integers(-3, 4, size=(h, w, cin)).astype(I8)
        wt = rng.integers(-1, 2, size=wshape).astype(I8)
        bias = rng.integers(-3, 4, size=cout).astype(I32)
        q = rand_requant(rng, cout, act, 0, acc_std=np.sqrt(taps))
        q["in_zp"] = 0
        assert q["shift"].max() > 0
        return x, wt, bias, stride, pad, dil, q, out_hw, cout, k
    x = rand_s8(rng, (h, w, cin), extreme)
    wt = rand_s8(rng, wshape, None if extreme is None else -128)
    bias = rng.integers(-5000, 5000, size=cout).astype(I32)
    q = rand_requant(rng, cout, act, int(rng.integers(-128, 0)), acc_std=128 * 74 * np.sqrt(taps))
    q["in_zp"] = int(rng.integers(-20, 20))
    if extreme is not None:
        q["in_zp"] = 127 if extreme == -128 else -128
    return x, wt, bias, stride, pad, dil, q, out_hw, cout, k


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv2d", "depthwise"])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_kernels(lib, case, depthwise):
    rng = np.random.default_rng(100 + case)
    x, wt, bias, stride, pad, dil, q, out_hw, cout, k = _conv_setup(CONV_CASES[case], rng, depthwise)
    for use_bias in (True, False):
        b = bias if use_bias else None
        ref_fn = depthwise_conv2d_s8 if depthwise else conv2d_s8
        want = ref_fn(x, wt, b, stride, pad, dil, q, out_hw)
        got = np.zeros((out_hw[0], out_hw[1], cout), dtype=I8)
        fn = lib.tt_depthwise_conv2d_s8 if depthwise else lib.tt_conv2d_s8
        fn(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(wt), ck.ptr(b), k[0], k[1],
           byref(ck.geom(stride, pad, dil)), byref(ck.requant(q)), ck.ptr(got), byref(ck.dims(got.shape)))
        np.testing.assert_array_equal(got, want)
        # non-degenerate outputs (not everything clamped), unless tiny or extreme by design
        assert CONV_CASES[case][-1] not in (None, "tiny") or want.size < 8 or len(np.unique(want)) > 3


@pytest.mark.parametrize("in_f,out_f,act,extreme", [
    (1, 1, "none", None), (13, 7, "relu", None), (64, 10, "relu6", None),
    (160, 33, "none", None), (17, 5, "none", 127), (17, 5, "none", -128)])
def test_fully_connected(lib, in_f, out_f, act, extreme):
    rng = np.random.default_rng(in_f * 31 + out_f)
    x = rand_s8(rng, (in_f,), extreme)
    wt = rand_s8(rng, (out_f, in_f), None if extreme is None else -128)
    bias = rng.integers(-3000, 3000, size=out_f).astype(I32)
    q = rand_requant(rng, out_f, act, int(rng.integers(-128, 10)), acc_std=128 * 74 * np.sqrt(in_f))
    q["in_zp"] = int(rng.integers(-20, 20))
    want = fully_connected_s8(x, wt, bias, q)
    got = np.zeros(out_f, dtype=I8)
    lib.tt_fully_connected_s8(ck.ptr(x), in_f, ck.ptr(wt), ck.ptr(bias), out_f, byref(ck.requant(q)), ck.ptr(got))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("scales,act", [
    ((0.05, 0.02, 0.07), "none"), ((0.1, 0.1, 0.05), "relu"), ((0.003, 0.4, 0.3), "relu6"),
    ((0.5, 0.01, 0.001), "none")])
def test_add(lib, scales, act):
    from tinytrain.ir import Graph, Op, QuantParams, Tensor
    rng = np.random.default_rng(int(scales[0] * 1000))
    n = 1000
    zps = [int(v) for v in rng.integers(-128, 128, size=3)]
    t = {name: Tensor(name, (1, n), "int8", QuantParams.per_tensor(s, z))
         for name, s, z in zip("aby", scales, zps)}
    op = Op("add0", "add", ["a", "b"], ["y"], {"activation": act})
    p = quant.add_params(Graph("g", t, [op], ["a", "b"], ["y"]), op)
    a, b = rand_s8(rng, n), rand_s8(rng, n)
    a[:4] = [-128, 127, -128, 127]
    b[:4] = [-128, 127, 127, -128]
    want = add_s8(a, b, p)
    got = np.zeros(n, dtype=I8)
    lib.tt_add_s8(ck.ptr(a), ck.ptr(b), n, byref(ck.add_params(p)), ck.ptr(got))
    np.testing.assert_array_equal(got, want)


POOL_CASES = [  # (H, W, C, kernel, stride, pad)
    (1, 1, 3, (1, 1), (1, 1), "valid"),
    (8, 8, 5, (3, 3), (2, 2), "same"),
    (7, 6, 4, (2, 2), (2, 2), "valid"),
    (7, 7, 3, (3, 2), (1, 2), "same"),
    (5, 5, 2, (5, 5), (1, 1), "valid"),
]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pooling(lib, kind, case):
    h, w, c, k, stride, pad = POOL_CASES[case]
    pad = same_pad(h, w, k, stride) if pad == "same" else (0, 0, 0, 0)
    out_hw = out_hw_of(h, w, k, stride, pad, (1, 1))
    rng = np.random.default_rng(case)
    for x, (lo, hi) in ((rand_s8(rng, (h, w, c)), (-128, 127)), (rand_s8(rng, (h, w, c)), (-20, 60)),
                        (rand_s8(rng, (h, w, c), -128), (-128, 127)), (rand_s8(rng, (h, w, c), 127), (-128, 127))):
        ref_fn = avg_pool2d_s8 if kind == "avg" else max_pool2d_s8
        want = ref_fn(x, k, stride, pad, lo, hi, out_hw)
        got = np.zeros((out_hw[0], out_hw[1], c), dtype=I8)
        fn = lib.tt_avg_pool2d_s8 if kind == "avg" else lib.tt_max_pool2d_s8
        fn(ck.ptr(x), byref(ck.dims(x.shape)), k[0], k[1], byref(ck.geom(stride, pad)), lo, hi,
           ck.ptr(got), byref(ck.dims(got.shape)))
        np.testing.assert_array_equal(got, want)


def test_avg_pool_rounds_half_away_from_zero(lib):
    # 2 taps summing to odd values: averages end in .5 and must round away from zero
    x = np.array([[[1], [2]], [[-1], [-2]]], dtype=I8)     # (2, 2, 1)
    want = np.array([[[2]], [[-2]]], dtype=I8)
    got = avg_pool2d_s8(x, (1, 2), (1, 1), (0, 0, 0, 0), -128, 127, (2, 1))
    np.testing.assert_array_equal(got, want)
    out = np.zeros((2, 1, 1), dtype=I8)
    lib.tt_avg_pool2d_s8(ck.ptr(x), byref(ck.dims(x.shape)), 1, 2, byref(ck.geom()), -128, 127,
                         ck.ptr(out), byref(ck.dims(out.shape)))
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("h,w,c,scale_ratio", [(1, 1, 3, 1.0), (4, 4, 19, 1.0), (7, 5, 8, 1.0),
                                                (3, 3, 5, 0.37), (6, 6, 4, 2.5)])
def test_global_avg_pool(lib, h, w, c, scale_ratio):
    rng = np.random.default_rng(h * w * c)
    for extreme in (None, -128, 127):
        x = rand_s8(rng, (h, w, c), extreme)
        m, s = quant.mean_multiplier(scale_ratio, 1.0, h * w)
        q = dict(in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
                 act_min=-128, act_max=127, multiplier=[m], shift=[s])
        want = global_avg_pool_s8(x, q)
        got = np.zeros(c, dtype=I8)
        lib.tt_global_avg_pool_s8(ck.ptr(x), byref(ck.dims(x.shape)), byref(ck.requant(q)), ck.ptr(got))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ratio,act", [(1.0, "relu"), (0.7, "relu"), (1.9, "relu6"), (0.05, "relu6")])
def test_relu(lib, ratio, act):
    rng = np.random.default_rng(int(ratio * 100))
    x = np.arange(-128, 128, dtype=I8)
    m, s = quant.quantize_multiplier(ratio)
    out_zp = int(rng.integers(-128, 0))
    q = dict(in_zp=int(rng.integers(-128, 128)), out_zp=out_zp, act_min=out_zp,
             act_max=127 if act == "relu" else min(127, out_zp + 40), multiplier=[m], shift=[s])
    want = relu_s8(x, q)
    got = np.zeros_like(x)
    lib.tt_relu_s8(ck.ptr(x), x.size, byref(ck.requant(q)), ck.ptr(got))
    np.testing.assert_array_equal(got, want)
    assert want.min() == out_zp


@pytest.mark.parametrize("rows,depth,in_scale,beta", [
    (1, 10, 0.1, 1.0), (3, 7, 0.02, 1.0), (2, 1000, 0.05, 1.0), (4, 3, 1.5, 1.0),
    (2, 37, 0.004, 2.0), (1, 5, 10.0, 1.0)])
def test_softmax(lib, rows, depth, in_scale, beta):
    from tinytrain.ir import Graph, Op, QuantParams, Tensor
    rng = np.random.default_rng(depth)
    t = {"x": Tensor("x", (rows, depth), "int8", QuantParams.per_tensor(in_scale, 3)),
         "y": Tensor("y", (rows, depth), "int8", QuantParams.per_tensor(1 / 256, -128))}
    op = Op("sm", "softmax", ["x"], ["y"], {"beta": beta})
    p = quant.softmax_params(Graph("g", t, [op], ["x"], ["y"]), op)
    x = rand_s8(rng, (rows, depth))
    x[0, 0] = 127
    x[-1, -1] = -128
    want = softmax_s8(x, p)
    got = np.zeros_like(x)
    lib.tt_softmax_s8(ck.ptr(x), rows, depth, byref(ck.softmax_params(p)), ck.ptr(got))
    np.testing.assert_array_equal(got, want)
    # a real softmax: rows sum to ~1 (256 steps of 1/256 from -128)
    sums = (want.astype(np.int64) + 128).sum(axis=1)
    assert np.all(np.abs(sums - 256) <= depth // 2 + 2)


def test_softmax_matches_float(lib):
    """Independent of refops: the fixed-point softmax is within 1 LSB of the real one."""
    x = np.linspace(-128, 127, 50).astype(I8)[None]
    scale = 0.08
    from tinytrain.ir import Graph, Op, QuantParams, Tensor
    t = {"x": Tensor("x", (1, 50), "int8", QuantParams.per_tensor(scale, 0)),
         "y": Tensor("y", (1, 50), "int8", QuantParams.per_tensor(1 / 256, -128))}
    op = Op("sm", "softmax", ["x"], ["y"], {"beta": 1.0})
    p = quant.softmax_params(Graph("g", t, [op], ["x"], ["y"]), op)
    got = np.zeros_like(x)
    lib.tt_softmax_s8(ck.ptr(x), 1, 50, byref(ck.softmax_params(p)), ck.ptr(got))
    real = x.astype(np.float64) * scale
    sm = np.exp(real - real.max())
    sm /= sm.sum()
    want = np.clip(np.round(sm * 256) - 128, -128, 127)
    assert np.max(np.abs(got.astype(np.int64) - want)) <= 1


@pytest.mark.parametrize("shape,pad", [((1, 1, 3), (1, 1, 1, 1)), ((4, 5, 3), (0, 1, 2, 0)),
                                       ((3, 3, 7), (2, 3, 0, 1))])
def test_pad(lib, shape, pad):
    rng = np.random.default_rng(sum(shape))
    x = rand_s8(rng, shape)
    value = -17
    want = pad_s8(x, pad, value)
    got = np.full(want.shape, 99, dtype=I8)
    lib.tt_pad_s8(x.ctypes.data, byref(ck.dims(x.shape)), pad[0], pad[2], value,
                  got.ctypes.data, byref(ck.dims(got.shape)))
    np.testing.assert_array_equal(got, want)
    assert np.all(want[:pad[0]] == value)


def test_quantize_dequantize(lib):
    rng = np.random.default_rng(5)
    scale, zp = np.float32(0.0375), -7
    halves = (np.arange(-300, 300) + 0.5).astype(np.float32) * scale   # exact ties
    x = np.concatenate([rng.normal(0, 3, 1000).astype(np.float32), halves,
                        np.array([0, -0.0, 1e30, -1e30, 4.7, -4.8], np.float32)])
    want = quantize_f32_s8(x, scale, zp)
    got = np.zeros(x.size, dtype=I8)
    lib.tt_quantize_f32_s8(x.ctypes.data, x.size, scale, zp, got.ctypes.data)
    np.testing.assert_array_equal(got, want)
    # independent check: round half away from zero, clamp
    r = np.floor(np.abs(x / scale) + np.float32(0.5)) * np.sign(x / scale)
    np.testing.assert_array_equal(want, np.clip(r + zp, -128, 127).astype(I8))

    q = np.arange(-128, 128, dtype=I8)
    want_f = dequantize_s8_f32(q, scale, zp)
    got_f = np.zeros(q.size, dtype=np.float32)
    lib.tt_dequantize_s8_f32(q.ctypes.data, q.size, scale, zp, got_f.ctypes.data)
    np.testing.assert_array_equal(got_f, want_f)
    np.testing.assert_array_equal(want_f, (np.float64(scale) * (q.astype(np.float64) - zp)).astype(np.float32))


# --- the fixed-point parameters themselves -------------------------------------------------------

def test_quantize_multiplier_edge_cases():
    assert quant.quantize_multiplier(0.0) == (0, 0)
    assert quant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert quant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert quant.quantize_multiplier(1 - 2**-40) == (1 << 30, 1)       # rounds to 2^31: halved
    assert quant.quantize_multiplier(2.0**-40) == (0, 0)                 # shift < -31 -> 0
    assert quant.quantize_multiplier(2.0**-32) == (1 << 30, -31)
    m, s = quant.quantize_multiplier(0.3)
    assert abs(m * 2.0 ** (s - 31) - 0.3) < 1e-9


def test_activation_range():
    assert quant.activation_range("none", 0.1, 3) == (-128, 127)
    assert quant.activation_range("relu", 0.1, 3) == (3, 127)
    assert quant.activation_range("relu6", 6 / 255, -128) == (-128, 127)
    assert quant.activation_range("relu6", 0.01, -100) == (-100, 127)
    assert quant.activation_range("relu6", 0.1, -100) == (-100, -40)
    assert quant.activation_range("relu", 0.1, -200) == (-128, 127)


def test_fixedpoint_helpers_against_definition():
    rng = np.random.default_rng(0)
    a = rng.integers(-(1 << 31), 1 << 31, size=2000)
    b = rng.integers(-(1 << 31), 1 << 31, size=2000)
    exact = np.array([round(int(x) * int(y) / 2**31) for x, y in zip(a[:200], b[:200])])
    got = sat_rounding_doubling_high_mul(a[:200], b[:200])
    assert np.max(np.abs(got - exact)) <= 1
    assert sat_rounding_doubling_high_mul(-(1 << 31), -(1 << 31)) == (1 << 31) - 1
    np.testing.assert_array_equal(rounding_divide_by_pot([5, -5, 6, -6, 7, -7], 1), [3, -3, 3, -3, 4, -4])
    # exp(x) for x in [-31, 0] in F5 -> F0, against floating point
    xs = np.linspace(-31, 0, 500)
    raw = np.round(xs * 2**26).astype(np.int64)
    e = exp_on_negative_values(raw, 5) / 2**31
    assert np.max(np.abs(e - np.exp(raw / 2**26))) < 1e-6


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_kernels_compile_for_cortex_m4(tmp_path):
    for src in ck.kernel_sources("*.c"):
        cmd = ["arm-none-eabi-gcc", *cflags.cross(load_board("mps2-an386")), f"-I{ck.INCLUDE}",
               "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{src.name}:\n{res.stderr}"
