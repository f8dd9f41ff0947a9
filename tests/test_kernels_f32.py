"""The float32 forward C kernels against numpy references and TensorFlow, on small
random cases with awkward shapes (1x1 spatial, stride 2 with asymmetric padding,
dilation, channel counts that are not multiples of 4)."""
from ctypes import byref, c_int32, c_void_p

import numpy as np
import pytest

from tinytrain.ir import conv_out_size

import ckernels as ck
from ckernels import rand, same_pads

F32 = np.float32
RTOL, ATOL = 1e-4, 1e-5
P = c_void_p


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="*_f32.c", build_dir=tmp_path_factory.mktemp("ck_f32"))


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def act_np(y, act):
    if act == 1:
        return np.maximum(y, 0)
    if act == 2:
        return np.clip(y, 0, 6)
    return y


# --- numpy references (float64) -------------------------------------------------------------

def conv_np(x, w, b, stride, pad, dil, depthwise=False):
    """x HWC; w OHWI (conv) or HWC (depthwise); pad (top, bottom, left, right)."""
    kh, kw = (w.shape[0], w.shape[1]) if depthwise else (w.shape[1], w.shape[2])
    oh = conv_out_size(x.shape[0], kh, stride[0], pad[0], pad[1], dil[0])
    ow = conv_out_size(x.shape[1], kw, stride[1], pad[2], pad[3], dil[1])
    xp = np.pad(x.astype(np.float64), ((pad[0], pad[1]), (pad[2], pad[3]), (0, 0)))
    cout = w.shape[-1] if depthwise else w.shape[0]
    y = np.zeros((oh, ow, cout))
    for ky in range(kh):
        for kx in range(kw):
            h0, w0 = ky * dil[0], kx * dil[1]
            patch = xp[h0:h0 + (oh - 1) * stride[0] + 1:stride[0], w0:w0 + (ow - 1) * stride[1] + 1:stride[1]]
            if depthwise:
                y += patch * w[ky, kx]
            else:
                y += patch @ w[:, ky, kx, :].T.astype(np.float64)
    return y + (0 if b is None else b)


def pool_windows(x, k, stride, pad):
    """Yield (oh, ow, window elements (n, C)) over in-bounds elements only."""
    H, W, _ = x.shape
    oh = conv_out_size(H, k[0], stride[0], pad[0], pad[1])
    ow = conv_out_size(W, k[1], stride[1], pad[2], pad[3])
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * stride[0] - pad[0], j * stride[1] - pad[2]
            win = x[max(h0, 0):min(h0 + k[0], H), max(w0, 0):min(w0 + k[1], W)]
            yield i, j, win.reshape(-1, x.shape[2])
    return oh, ow


def pool_np(x, k, stride, pad, kind):
    oh = conv_out_size(x.shape[0], k[0], stride[0], pad[0], pad[1])
    ow = conv_out_size(x.shape[1], k[1], stride[1], pad[2], pad[3])
    y = np.zeros((oh, ow, x.shape[2]))
    for i, j, win in pool_windows(x.astype(np.float64), k, stride, pad):
        y[i, j] = win.mean(0) if kind == "avg" else win.max(0)
    return y


# --- conv2d / depthwise ---------------------------------------------------------------------

CONV_CASES = [
    # H, W, Cin, Cout, kh, kw, stride, pad (t, b, l, r), dilation, act
    (5, 5, 3, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 0),
    (7, 6, 5, 3, 3, 3, (2, 2), (0, 1, 1, 0), (1, 1), 1),     # stride 2, asymmetric pad
    (1, 1, 7, 5, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 2),     # 1x1 spatial
    (8, 7, 2, 6, 3, 2, (1, 1), (2, 2, 1, 1), (2, 2), 0),     # dilation
    (6, 6, 9, 1, 5, 5, (2, 1), (2, 2, 2, 2), (1, 1), 2),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_f32_vs_numpy(lib, case):
    H, W, cin, cout, kh, kw, stride, pad, dil, act = case
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, H, W, cin), rand(rng, cout, kh, kw, cin), rand(rng, cout)
    ref = act_np(conv_np(x, w, b, stride, pad, dil), act)
    y = np.full(ref.shape, np.nan, dtype=F32)
    lib.tt_conv2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(w), ck.ptr(b), kh, kw,
                      byref(ck.geom(stride, pad, dil)), act, ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


def test_conv2d_f32_without_bias(lib):
    rng = np.random.default_rng(2)
    x, w = rand(rng, 4, 4, 3), rand(rng, 2, 3, 3, 3)
    ref = conv_np(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1))
    y = np.zeros(ref.shape, F32)
    lib.tt_conv2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(w), None, 3, 3,
                      byref(ck.geom((1, 1), (1, 1, 1, 1))), 0, ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CONV_CASES)
def test_depthwise_conv2d_f32_vs_numpy(lib, case):
    H, W, c, _, kh, kw, stride, pad, dil, act = case
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, H, W, c), rand(rng, kh, kw, c), rand(rng, c)
    ref = act_np(conv_np(x, w, b, stride, pad, dil, depthwise=True), act)
    y = np.full(ref.shape, np.nan, dtype=F32)
    lib.tt_depthwise_conv2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(w), ck.ptr(b), kh, kw,
                                byref(ck.geom(stride, pad, dil)), act, ck.ptr(y),
                                byref(ck.dims(y.shape)))
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


def test_conv_and_depthwise_vs_tensorflow(lib, tf):
    """The numpy reference's conventions (OHWI, pad order) agree with TensorFlow's."""
    rng = np.random.default_rng(4)
    x, w, b = rand(rng, 7, 6, 5), rand(rng, 3, 3, 3, 5), rand(rng, 3)
    pad = (0, 1, 1, 0)
    xt = tf.pad(x[None], [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]])
    ref = tf.nn.conv2d(xt, np.transpose(w, (1, 2, 3, 0)), strides=[1, 2, 2, 1], padding="VALID")[0] + b
    y = np.zeros(ref.shape, F32)
    lib.tt_conv2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(w), ck.ptr(b), 3, 3,
                      byref(ck.geom((2, 2), pad)), 0, ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_allclose(y, ref.numpy(), rtol=RTOL, atol=ATOL)

    wd = rand(rng, 3, 3, 5)
    ref = tf.nn.depthwise_conv2d(xt, wd[..., None], strides=[1, 2, 2, 1], padding="VALID")[0]
    y = np.zeros(ref.shape, F32)
    lib.tt_depthwise_conv2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(wd), None, 3, 3,
                                byref(ck.geom((2, 2), pad)), 0, ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_allclose(y, ref.numpy(), rtol=RTOL, atol=ATOL)


# --- fully connected, add, relu -------------------------------------------------------------

@pytest.mark.parametrize("in_f,out_f,act", [(1, 1, 0), (13, 7, 1), (64, 10, 2)])
def test_fully_connected_f32(lib, in_f, out_f, act):
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, in_f), rand(rng, out_f, in_f) * 3, rand(rng, out_f)
    y = np.zeros(out_f, F32)
    lib.tt_fully_connected_f32(ck.ptr(x), in_f, ck.ptr(w), ck.ptr(b), out_f, act, ck.ptr(y))
    np.testing.assert_allclose(y, act_np(w.astype(np.float64) @ x + b, act), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("act", [0, 1, 2])
def test_add_and_relu_f32(lib, act):
    rng = np.random.default_rng(6)
    a, b = rand(rng, 37) * 5, rand(rng, 37) * 5
    y = np.zeros(37, F32)
    lib.tt_add_f32(ck.ptr(a), ck.ptr(b), 37, act, ck.ptr(y))
    np.testing.assert_array_equal(y, act_np(a + b, act))
    lib.tt_relu_f32(ck.ptr(a), 37, act, ck.ptr(y))
    np.testing.assert_array_equal(y, act_np(a, act))


# --- pooling ------------------------------------------------------------------------------------

# H, W, C, kernel, stride, act: the shared geometries, each with a fused activation
POOL_CASES = [(*geometry, act) for geometry, act in zip(ck.POOL_GEOMETRIES, (0, 1, 2, 0))]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool2d_f32_vs_numpy_and_tf(lib, tf, kind, case):
    H, W, C, k, stride, act = case
    rng = np.random.default_rng(7)
    x = rand(rng, H, W, C) * 4
    pad = same_pads(H, W, k, stride)
    ref = act_np(pool_np(x, k, stride, pad, kind), act)
    tf_pool = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
    np.testing.assert_allclose(act_np(tf_pool(x[None], k, stride, "SAME")[0].numpy(), act), ref,
                               rtol=RTOL, atol=ATOL)
    y = np.full(ref.shape, np.nan, dtype=F32)
    fn = lib.tt_avg_pool2d_f32 if kind == "avg" else lib.tt_max_pool2d_f32
    fn(ck.ptr(x), byref(ck.dims(x.shape)), k[0], k[1], byref(ck.geom(stride, pad)), act,
       ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", [(1, 1, 5), (3, 4, 7)])
def test_global_avg_pool_f32(lib, shape):
    x = rand(np.random.default_rng(8), *shape)
    y = np.zeros(shape[2], F32)
    lib.tt_global_avg_pool_f32(ck.ptr(x), byref(ck.dims(shape)), ck.ptr(y))
    np.testing.assert_allclose(y, x.astype(np.float64).mean((0, 1)), rtol=RTOL, atol=ATOL)


# --- softmax, pad -------------------------------------------------------------------------------

def test_softmax_f32_stable(lib):
    rng = np.random.default_rng(9)
    x = ck.carray(np.concatenate([rng.standard_normal(10) * 3, [1000.0, 999.0] + [0.0] * 8]), F32)
    y = np.zeros(20, F32)
    declare = ck.declare(lib, "tt_softmax_f32", P, c_int32, c_int32, P)
    declare(ck.ptr(x), 2, 10, ck.ptr(y))
    xr = x.astype(np.float64).reshape(2, 10)
    ref = np.exp(xr - xr.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.reshape(2, 10), ref, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("shape,top,left,out_hw", [((3, 4, 5), 1, 2, (5, 7)), ((1, 1, 3), 0, 0, (2, 1))])
def test_pad_f32(lib, shape, top, left, out_hw):
    x = rand(np.random.default_rng(10), *shape)
    out = (out_hw[0], out_hw[1], shape[2])
    y = np.full(out, np.nan, dtype=F32)
    lib.tt_pad_f32(ck.ptr(x), byref(ck.dims(shape)), top, left, ck.ptr(y), byref(ck.dims(out)))
    ref = np.zeros(out, F32)
    ref[top:top + shape[0], left:left + shape[1]] = x
    np.testing.assert_array_equal(y, ref)
