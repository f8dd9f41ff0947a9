"""The float32 kernels training uses give the floats of their documented summation order,
bit for bit: every output or gradient element is built by single-precision operations in a
fixed order (the C's contract, what makes the host build and every device agree). Numpy
replays that order here in float32, one rounding per operation, and the C kernels must
match it exactly, on shapes reaching each of their paths: conv2d_f32 (the small-layer path
with the weights tap-major, the four-channel blocks with contiguous spans, dilation,
padding, strides), fully_connected_f32, max pooling forward and backward (first maximum,
NaN skipped), the relu masks, fully_connected's input gradient (zero gradients skipped)
and SGD update, and conv2d's weight gradient and fused update (zero gradients skipped)."""
from ctypes import POINTER, byref, c_float, c_int32, c_void_p

import numpy as np
import pytest

from tinytrain.ir import conv_out_size

import ckernels as ck

F32 = np.float32
P, I = c_void_p, c_int32


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = ck.load_kernels(pattern="*.c", build_dir=tmp_path_factory.mktemp("ck_f32_order"))
    S, CH, U = POINTER(ck.TtConvShape), POINTER(ck.TtChannels), POINTER(ck.TtUpdate)
    ck.declare(lib, "tt_conv2d_grad_weight_f32", S, CH, P, P, I, P)
    ck.declare(lib, "tt_conv2d_update_weight_f32", S, CH, P, P, P, U, P)
    ck.declare(lib, "tt_fully_connected_grad_input_f32", I, I, P, P, I, P)
    ck.declare(lib, "tt_fully_connected_update_weight_f32", I, CH, P, P, P, U)
    ck.declare(lib, "tt_max_pool2d_grad_input_f32", S, P, P, I, P)
    ck.declare(lib, "tt_mask_relu_f32", P, I, P)
    ck.declare(lib, "tt_mask_relu6_f32", P, I, P)
    ck.declare(lib, "tt_mask_apply_f32", P, I, P)
    return lib


def vp(a):
    return a.ctypes.data_as(c_void_p)


def act_f32(v, act):
    if act == 1:
        return np.where(v > 0, v, F32(0)).astype(F32)
    if act == 2:
        return np.where(v > 0, np.where(v < 6, v, F32(6)), F32(0)).astype(F32)
    return v


def out_hw(h, w, k, stride, pad, dil):
    return (conv_out_size(h, k[0], stride[0], pad[0], pad[1], dil[0]),
            conv_out_size(w, k[1], stride[1], pad[2], pad[3], dil[1]))


def taps(h, w, oh, ow, k, stride, pad, dil):
    """(ky, kx, valid (oh, ow) mask, ih, iw) per tap, in (ky, kx) order."""
    for ky in range(k[0]):
        for kx in range(k[1]):
            ih = np.arange(oh)[:, None] * stride[0] - pad[0] + ky * dil[0]
            iw = np.arange(ow)[None, :] * stride[1] - pad[2] + kx * dil[1]
            valid = (ih >= 0) & (ih < h) & (iw >= 0) & (iw < w)
            yield ky, kx, valid, np.clip(ih, 0, h - 1), np.clip(iw, 0, w - 1)


def conv2d_in_order(x, wt, b, stride, pad, dil, act):
    """acc = bias, then + x * w over the taps inside the input in (ky, kx, i) order."""
    h, w, cin = x.shape
    cout, kh, kw, _ = wt.shape
    oh, ow = out_hw(h, w, (kh, kw), stride, pad, dil)
    acc = np.broadcast_to(b if b is not None else np.zeros(cout, F32), (oh, ow, cout)).astype(F32)
    for ky, kx, valid, ih, iw in taps(h, w, oh, ow, (kh, kw), stride, pad, dil):
        for i in range(cin):
            v = x[ih, iw, i][..., None]                               # (oh, ow, 1)
            acc = np.where(valid[..., None], (acc + (v * wt[:, ky, kx, i]).astype(F32)).astype(F32), acc)
    return act_f32(acc, act)


CONV = [  # H, W, cin, cout, k, stride, pad (t, b, l, r), dil, act, bias
    (28, 28, 1, 8, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),       # small path, CNN first layer
    (9, 8, 3, 13, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2, True),        # small, padded, cout % 8
    (6, 7, 2, 5, (3, 2), (1, 2), (2, 0, 1, 1), (2, 1), 0, False),        # small, dilation, no bias
    (7, 6, 20, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),        # blocks of 4 + 1 left
    (8, 8, 12, 70, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 0, True),       # 1x1, large
    (9, 9, 16, 6, (3, 3), (2, 1), (0, 2, 2, 1), (1, 2), 2, True),        # dil_w 2: per-tap path
    (5, 5, 40, 4, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, False),
]


@pytest.mark.parametrize("case", CONV)
def test_conv2d_f32_sums_in_order(lib, case):
    h, w, cin, cout, k, stride, pad, dil, act, bias = case
    rng = np.random.default_rng(sum(case[:4]))
    x = rng.standard_normal((h, w, cin)).astype(F32)
    wt = rng.standard_normal((cout, *k, cin)).astype(F32)
    b = rng.standard_normal(cout).astype(F32) if bias else None
    want = conv2d_in_order(x, wt, b, stride, pad, dil, act)
    y = np.full(want.shape, np.nan, F32)
    lib.tt_conv2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(wt), ck.ptr(b), k[0], k[1],
                      byref(ck.geom(stride, pad, dil)), act, ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_array_equal(y.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize("in_f,out_f,act,bias", [(64, 32, 1, True), (32, 10, 0, True), (7, 5, 2, False),
                                                 (1352, 10, 0, True), (3, 1, 0, True)])
def test_fully_connected_f32_sums_in_order(lib, in_f, out_f, act, bias):
    rng = np.random.default_rng(in_f + out_f)
    x, w = rng.standard_normal(in_f).astype(F32), rng.standard_normal((out_f, in_f)).astype(F32)
    b = rng.standard_normal(out_f).astype(F32) if bias else None
    acc = (b if bias else np.zeros(out_f, F32)).astype(F32)
    for i in range(in_f):
        acc = (acc + (x[i] * w[:, i]).astype(F32)).astype(F32)
    want = act_f32(acc, act)
    y = np.full(out_f, np.nan, F32)
    lib.tt_fully_connected_f32(ck.ptr(x), in_f, ck.ptr(w), ck.ptr(b), out_f, act, ck.ptr(y))
    np.testing.assert_array_equal(y.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize("accumulate", [0, 1])
def test_fully_connected_grad_input_f32_in_order(lib, accumulate):
    rng = np.random.default_rng(3)
    in_f, out_f = 37, 11
    gy, w = rng.standard_normal(out_f).astype(F32), rng.standard_normal((out_f, in_f)).astype(F32)
    gy[[1, 4, 5, 9]] = 0.0                                   # skipped, and the groups of four shift
    gx0 = rng.standard_normal(in_f).astype(F32) if accumulate else np.zeros(in_f, F32)
    want = gx0.copy()
    for o in range(out_f):
        if gy[o] != 0:
            want = (want + (gy[o] * w[o]).astype(F32)).astype(F32)
    gx = gx0.copy() if accumulate else np.full(in_f, np.nan, F32)
    lib.tt_fully_connected_grad_input_f32(in_f, out_f, vp(gy), vp(w), accumulate, vp(gx))
    np.testing.assert_array_equal(gx.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize("momentum,index", [(False, False), (True, False), (False, True)])
def test_fully_connected_update_weight_f32_in_order(lib, momentum, index):
    rng = np.random.default_rng(4)
    in_f, out_f, lr, mu, wd = 13, 6, 0.05, 0.9, 0.01
    x, gy = rng.standard_normal(in_f).astype(F32), rng.standard_normal(out_f).astype(F32)
    w0 = rng.standard_normal((out_f, in_f)).astype(F32)
    idx = np.array([2, 5, 7, 11], np.int32) if index else None
    cols = idx if index else np.arange(in_f)
    m0 = rng.standard_normal((out_f, len(cols))).astype(F32) if momentum else None
    want, m_want = w0.copy(), None if m0 is None else m0.copy()
    for o in range(out_f):
        for j, c in enumerate(cols):
            g = F32(F32(gy[o] * x[j]) + F32(F32(wd) * want[o, c]))
            if momentum:
                m_want[o, j] = F32(F32(F32(mu) * m_want[o, j]) + g)
                g = m_want[o, j]
            want[o, c] = F32(want[o, c] - F32(F32(lr) * g))
    w, m = w0.copy(), None if m0 is None else m0.copy()
    ch = ck.channels(in_f, len(cols), idx)
    lib.tt_fully_connected_update_weight_f32(out_f, ch, vp(w), vp(x), vp(gy),
                                             ck.update(lr, mu if momentum else 0.0, wd, m=m))
    np.testing.assert_array_equal(w.view(np.int32), want.view(np.int32))
    if momentum:
        np.testing.assert_array_equal(m.view(np.int32), m_want.view(np.int32))


def conv_grad_weight_in_order(x, gy, k, stride, pad, dil, kk):
    """dW[o, ky, kx, i] (i < kk): + d * x over the output pixels in order, d == 0 skipped."""
    h, w, _ = x.shape
    oh, ow, cout = gy.shape
    gw = np.zeros((cout, *k, kk), F32)
    for p in range(oh * ow):
        py, px = divmod(p, ow)
        for ky in range(k[0]):
            ih = py * stride[0] - pad[0] + ky * dil[0]
            for kx in range(k[1]):
                iw = px * stride[1] - pad[2] + kx * dil[1]
                if not (0 <= ih < h and 0 <= iw < w):
                    continue
                d = gy[py, px]
                upd = (gw[:, ky, kx, :] + (d[:, None] * x[ih, iw, :kk][None, :]).astype(F32)).astype(F32)
                gw[:, ky, kx, :] = np.where((d != 0)[:, None], upd, gw[:, ky, kx, :])
    return gw


@pytest.mark.parametrize("case", [((6, 6, 1), 8, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
                                  ((7, 5, 6), 4, (3, 3), (2, 1), (1, 1, 1, 1), (1, 1), 6),
                                  ((7, 7, 5), 3, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 5),
                                  ((6, 6, 8), 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3)])
def test_conv2d_weight_gradient_and_update_f32_in_order(lib, case):
    (h, w, cin), cout, k, stride, pad, dil, kk = case
    rng = np.random.default_rng(h * w + cin)
    oh, ow = out_hw(h, w, k, stride, pad, dil)
    x = rng.standard_normal((h, w, cin)).astype(F32)
    gy = rng.standard_normal((oh, ow, cout)).astype(F32)
    gy[rng.random(gy.shape) < 0.3] = 0.0
    want = conv_grad_weight_in_order(x, gy, k, stride, pad, dil, kk)
    s = ck.conv_shape((h, w, cin), (oh, ow, cout), k[0], k[1], stride, pad, dil)
    x_saved = np.ascontiguousarray(x[..., :kk]) if kk < cin else x     # the trained channels, saved
    ch = ck.channels(cin, kk, None, kk)
    gw = np.full(want.shape, np.nan, F32)
    lib.tt_conv2d_grad_weight_f32(s, ch, vp(x_saved), vp(gy), 0, vp(gw))
    np.testing.assert_array_equal(gw.view(np.int32), want.view(np.int32))
    # the fused update: the same gradient, then w - lr * (g + wd * w)
    w0 = rng.standard_normal((cout, *k, cin)).astype(F32)
    wu, lr, wd = w0.copy(), 0.1, 0.01
    upd = w0.copy()
    g = (want + (F32(wd) * upd[..., :kk]).astype(F32)).astype(F32)
    upd[..., :kk] = (upd[..., :kk] - (F32(lr) * g).astype(F32)).astype(F32)
    scratch = np.zeros(k[0] * k[1] * kk, F32)
    lib.tt_conv2d_update_weight_f32(s, ch, vp(wu), vp(x_saved), vp(gy), ck.update(lr, 0.0, wd), vp(scratch))
    np.testing.assert_array_equal(wu.view(np.int32), upd.view(np.int32))


@pytest.mark.parametrize("k,stride,pad,c", [((2, 2), (2, 2), (0, 0, 0, 0), 8), ((3, 3), (2, 2), (1, 1, 1, 1), 70),
                                            ((3, 2), (1, 2), (0, 2, 1, 0), 5)])
def test_max_pool2d_f32_forward_and_backward_pick_the_first_maximum(lib, k, stride, pad, c):
    rng = np.random.default_rng(c)
    h, w = 7, 6
    x = rng.integers(-3, 4, size=(h, w, c)).astype(F32)        # many ties
    x[0, 0, 0] = np.nan                                         # skipped by `v > m`
    oh, ow = out_hw(h, w, k, stride, pad, (1, 1))
    want_y = np.zeros((oh, ow, c), F32)
    gy = rng.standard_normal((oh, ow, c)).astype(F32)
    want_gx = np.zeros((h, w, c), F32)
    for py in range(oh):
        for px in range(ow):
            rows = range(max(py * stride[0] - pad[0], 0), min(py * stride[0] - pad[0] + k[0], h))
            cols = range(max(px * stride[1] - pad[2], 0), min(px * stride[1] - pad[2] + k[1], w))
            for ch in range(c):
                m, best = F32(-3.402823466e38), None
                for r in rows:
                    for q in cols:
                        if best is None or x[r, q, ch] > m:     # the first element, then strictly larger
                            m, best = x[r, q, ch], (r, q)
                mf = F32(-3.402823466e38)
                for r in rows:
                    for q in cols:
                        if x[r, q, ch] > mf:
                            mf = x[r, q, ch]
                want_y[py, px, ch] = mf
                if best is not None:
                    want_gx[best[0], best[1], ch] = F32(want_gx[best[0], best[1], ch] + gy[py, px, ch])
    y = np.full(want_y.shape, np.nan, F32)
    lib.tt_max_pool2d_f32(ck.ptr(x), byref(ck.dims(x.shape)), k[0], k[1], byref(ck.geom(stride, pad)), 0,
                          ck.ptr(y), byref(ck.dims(y.shape)))
    np.testing.assert_array_equal(y, want_y)
    gx = np.full(x.shape, np.nan, F32)
    lib.tt_max_pool2d_grad_input_f32(ck.conv_shape(x.shape, y.shape, k[0], k[1], stride, pad), vp(x), vp(gy), 0,
                                     vp(gx))
    np.testing.assert_array_equal(gx.view(np.int32), want_gx.view(np.int32))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 83])
def test_relu_masks_and_their_use(lib, n):
    rng = np.random.default_rng(n)
    y = (rng.standard_normal(n) * 4).astype(F32)
    y[::5] = 0.0
    nb = (n + 7) // 8
    for fn, keep in (("tt_mask_relu_f32", y > 0), ("tt_mask_relu6_f32", (y > 0) & (y < 6))):
        mask = np.full(nb, 0xAA, np.uint8)
        getattr(lib, fn)(vp(y), n, vp(mask))
        bits = np.unpackbits(mask, bitorder="little")
        np.testing.assert_array_equal(bits[:n].astype(bool), keep, err_msg=fn)
        assert not bits[n:].any(), fn
        g = rng.standard_normal(n).astype(F32)
        g[0] = -0.0
        want = np.where(keep, g, F32(0))
        lib.tt_mask_apply_f32(vp(g), n, vp(mask))
        np.testing.assert_array_equal(g.view(np.int32), want.view(np.int32), err_msg=fn)
