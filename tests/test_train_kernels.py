"""The training C kernels: backward of conv2d / depthwise / fully connected / pools / pad /
softmax against TensorFlow autodiff (and numpy), in float and int8-graph variants;
partial-channel weight gradients; the fused in-place updates; masks; losses; SGD and
QAS updates, the integer ones compared exactly."""
from ctypes import POINTER, byref, c_float, c_int8, c_int32, c_uint8, c_void_p
from fractions import Fraction

import numpy as np
import pytest

from tinytrain.ir import conv_out_size

import ckernels as ck
from ckernels import rand, same_pads

F32, I8, I32 = np.float32, np.int8, np.int32
RTOL, ATOL = 1e-4, 1e-5
P, I, F = c_void_p, c_int32, c_float
DIMS, GEOM = POINTER(ck.TtDims), POINTER(ck.TtGeom)

SIGNATURES = {
    "tt_conv2d_grad_input_f32": (P, DIMS, P, I, I, GEOM, I, P, DIMS),
    "tt_conv2d_grad_input_s8": (P, DIMS, P, P, I, I, I, GEOM, I, P, DIMS),
    "tt_conv2d_grad_weight_f32": (P, DIMS, P, DIMS, I, I, GEOM, I, I, P),
    "tt_conv2d_grad_weight_s8": (P, DIMS, F, I, P, DIMS, I, I, GEOM, I, I, P),
    "tt_conv2d_grad_bias_f32": (P, DIMS, I, P),
    "tt_conv2d_update_weight_f32": (P, I, P, DIMS, P, DIMS, I, I, GEOM, I, P, F, F, F, P, P),
    "tt_conv2d_update_weight_s8": (P, I, P, I, P, DIMS, F, I, P, DIMS, I, I, GEOM, I, P,
                                   F, F, F, P, P, P),
    "tt_depthwise_conv2d_grad_input_f32": (P, DIMS, P, I, I, GEOM, I, P, DIMS),
    "tt_depthwise_conv2d_grad_input_s8": (P, DIMS, P, P, I, I, I, GEOM, I, P, DIMS),
    "tt_depthwise_conv2d_grad_weight_f32": (P, DIMS, P, DIMS, I, I, GEOM, I, P, I, P),
    "tt_depthwise_conv2d_grad_weight_s8": (P, DIMS, F, I, P, DIMS, I, I, GEOM, I, P, I, P),
    "tt_depthwise_conv2d_update_weight_f32": (P, P, DIMS, P, DIMS, I, I, GEOM, I, P, F, F, F, P, P),
    "tt_depthwise_conv2d_update_weight_s8": (P, P, I, P, DIMS, F, I, P, DIMS, I, I, GEOM, I, P,
                                             F, F, F, P, P, P),
    "tt_fully_connected_grad_input_f32": (P, I, P, I, I, P),
    "tt_fully_connected_grad_input_s8": (P, I, P, P, I, I, I, P),
    "tt_fully_connected_grad_weight_f32": (P, I, P, I, I, P),
    "tt_fully_connected_grad_weight_s8": (P, I, F, I, P, I, I, P),
    "tt_fully_connected_grad_bias_f32": (P, I, I, P),
    "tt_fully_connected_update_weight_f32": (P, I, P, P, I, I, P, F, F, F, P),
    "tt_fully_connected_update_weight_s8": (P, I, P, I, P, F, I, P, I, I, P, F, F, F, P, P),
    "tt_avg_pool2d_grad_input_f32": (P, DIMS, I, I, GEOM, I, P, DIMS),
    "tt_max_pool2d_grad_input_f32": (P, DIMS, P, DIMS, I, I, GEOM, I, P),
    "tt_max_pool2d_grad_input_s8": (P, DIMS, P, DIMS, I, I, GEOM, I, P),
    "tt_global_avg_pool_grad_input_f32": (P, DIMS, I, P),
    "tt_pad_grad_input_f32": (P, DIMS, I, I, I, P, DIMS),
    "tt_softmax_grad_input_f32": (P, P, I, I, I, P),
    "tt_add_grad_f32": (P, P, I),
    "tt_mask_relu_f32": (P, I, P),
    "tt_mask_relu6_f32": (P, I, P),
    "tt_mask_clamp_s8": (P, I, I, I, P),
    "tt_mask_apply_f32": (P, I, P),
    "tt_save_channels_f32": (P, I, I, I, P, P),
    "tt_save_channels_s8": (P, I, I, I, P, P),
    "tt_sgd_update_f32": (P, P, I, F, F, F, P),
    "tt_sgd_update_rows_f32": (P, I, P, I, I, F, F, F, P),
    "tt_qas_update_weight_s8": (P, P, I, I, I, I, P, I, F, F, F, P, P),
    "tt_qas_update_dw_weight_s8": (P, P, I, I, I, P, I, F, F, F, P, P),
    "tt_qas_update_bias_s32": (P, P, I, P, I, F, F, F, F, P, P),
}
LOSSES = {
    "tt_softmax_cross_entropy_f32": (P, I, I, P),
    "tt_softmax_cross_entropy_s8": (P, I, F, I, I, P),
    "tt_mse_f32": (P, P, I, P),
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = ck.load_kernels(pattern="*.c", build_dir=tmp_path_factory.mktemp("ck_train"))
    for name, args in SIGNATURES.items():
        ck.declare(lib, name, *args)
    for name, args in LOSSES.items():
        ck.declare(lib, name, *args, restype=c_float)
    return lib


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def vp(a):
    """void* of an array (None -> NULL)."""
    return None if a is None else a.ctypes.data_as(c_void_p)


def d(shape):
    return byref(ck.dims(shape))


# --- TensorFlow references: gradients of sum(f(x, w) * gy) -----------------------------------

def tf_conv_grads(tf, x, w, b, gy, stride, pad, dil, depthwise):
    xv, wv, bv = tf.Variable(x[None]), tf.Variable(w), tf.Variable(b)
    with tf.GradientTape() as tape:
        xp = tf.pad(xv, [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]])
        if depthwise:
            y = tf.nn.depthwise_conv2d(xp, wv[..., None], [1, *stride, 1], "VALID", dilations=dil)
        else:
            y = tf.nn.conv2d(xp, tf.transpose(wv, (1, 2, 3, 0)), [1, *stride, 1], "VALID", dilations=dil)
        loss = tf.reduce_sum((y + bv) * gy[None])
    gx, gw, gb = tape.gradient(loss, [xv, wv, bv])
    return gx.numpy()[0], gw.numpy(), gb.numpy()


def out_shape(H, W, C, kh, kw, stride, pad, dil):
    return (conv_out_size(H, kh, stride[0], pad[0], pad[1], dil[0]),
            conv_out_size(W, kw, stride[1], pad[2], pad[3], dil[1]), C)


CONV_CASES = [
    # H, W, Cin, Cout, kh, kw, stride, pad (t, b, l, r), dilation, k_in
    (5, 5, 3, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 3),
    (7, 6, 5, 3, 3, 3, (2, 2), (0, 1, 1, 0), (1, 1), 2),    # stride 2, asymmetric pad, k_in < Cin
    (1, 1, 7, 5, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 7),    # 1x1 spatial
    (8, 7, 6, 6, 3, 2, (1, 1), (2, 2, 1, 1), (2, 2), 3),    # dilation
    (6, 5, 9, 2, 5, 5, (2, 1), (2, 2, 2, 2), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_backward_f32_vs_tf(lib, tf, case):
    H, W, cin, cout, kh, kw, stride, pad, dil, k = case
    rng = np.random.default_rng(11)
    x, w, b = rand(rng, H, W, cin), rand(rng, cout, kh, kw, cin), rand(rng, cout)
    oshape = out_shape(H, W, cout, kh, kw, stride, pad, dil)
    gy = rand(rng, *oshape)
    gx_ref, gw_ref, gb_ref = tf_conv_grads(tf, x, w, b, gy, stride, pad, dil, False)
    g = byref(ck.geom(stride, pad, dil))

    gx = np.full(x.shape, np.nan, F32)
    lib.tt_conv2d_grad_input_f32(vp(gy), d(oshape), vp(w), kh, kw, g, 0, vp(gx), d(x.shape))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)
    lib.tt_conv2d_grad_input_f32(vp(gy), d(oshape), vp(w), kh, kw, g, 1, vp(gx), d(x.shape))
    np.testing.assert_allclose(gx, 2 * gx_ref, rtol=RTOL, atol=ATOL)

    gw = np.full((cout, kh, kw, k), np.nan, F32)
    lib.tt_conv2d_grad_weight_f32(vp(x), d(x.shape), vp(gy), d(oshape), kh, kw, g, k, 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)
    # the same from a saved copy holding only the trained channels
    saved = np.zeros((H, W, k), F32)
    lib.tt_save_channels_f32(vp(x), H * W, cin, k, None, vp(saved))
    np.testing.assert_array_equal(saved, x[..., :k])
    gw2 = np.zeros_like(gw)
    lib.tt_conv2d_grad_weight_f32(vp(saved), d(saved.shape), vp(gy), d(oshape), kh, kw, g, k, 0, vp(gw2))
    np.testing.assert_array_equal(gw2, gw)
    lib.tt_conv2d_grad_weight_f32(vp(saved), d(saved.shape), vp(gy), d(oshape), kh, kw, g, k, 1, vp(gw2))
    np.testing.assert_allclose(gw2, 2 * gw, rtol=RTOL, atol=ATOL)

    gb = np.full(cout, np.nan, F32)
    lib.tt_conv2d_grad_bias_f32(vp(gy), d(oshape), 0, vp(gb))
    np.testing.assert_allclose(gb, gb_ref, rtol=RTOL, atol=ATOL)


def sgd_np(w, g, lr, mom, wd, m):
    """The float32 SGD rule of tt_train_kernels.h, step by step in float32."""
    lr, mom, wd = F32(lr), F32(mom), F32(wd)
    g = (g + wd * w).astype(F32)
    if m is not None:
        m[...] = (mom * m + g).astype(F32)
        g = m
    return (w - lr * g).astype(F32)


@pytest.mark.parametrize("use_index", [False, True])
@pytest.mark.parametrize("momentum", [False, True])
def test_conv2d_update_weight_f32_is_grad_then_sgd(lib, use_index, momentum):
    """Fused per-channel update == full weight gradient, then SGD on the trained slice."""
    H, W, cin, cout, kh, kw, stride, pad, dil, k = CONV_CASES[1]
    rng = np.random.default_rng(12)
    x, w = rand(rng, H, W, cin), rand(rng, cout, kh, kw, cin)
    oshape = out_shape(H, W, cout, kh, kw, stride, pad, dil)
    gy = rand(rng, *oshape)
    g = byref(ck.geom(stride, pad, dil))
    idx = ck.carray([4, 1][:k], I32) if use_index else None
    chans = idx if use_index else np.arange(k)
    xs = ck.carray(x[..., chans], F32)
    gw = np.zeros((cout, kh, kw, k), F32)
    lib.tt_conv2d_grad_weight_f32(vp(xs), d(xs.shape), vp(gy), d(oshape), kh, kw, g, k, 0, vp(gw))
    m = rand(rng, cout, kh, kw, k) if momentum else None
    m_ref = None if m is None else m.copy()
    expected = w.copy()
    expected[..., chans] = sgd_np(w[..., chans], gw, 0.1, 0.9, 0.01, m_ref)
    scratch = np.zeros(kh * kw * k, F32)
    lib.tt_conv2d_update_weight_f32(vp(w), cin, vp(xs), d(xs.shape), vp(gy), d(oshape), kh, kw, g,
                                    k, vp(idx), 0.1, 0.9, 0.01, vp(m), vp(scratch))
    np.testing.assert_array_equal(w, expected)
    if m is not None:
        np.testing.assert_array_equal(m, m_ref)


@pytest.mark.parametrize("case", CONV_CASES)
def test_depthwise_backward_f32_vs_tf(lib, tf, case):
    H, W, c, _, kh, kw, stride, pad, dil, k = case
    rng = np.random.default_rng(13)
    x, w, b = rand(rng, H, W, c), rand(rng, kh, kw, c), rand(rng, c)
    oshape = out_shape(H, W, c, kh, kw, stride, pad, dil)
    gy = rand(rng, *oshape)
    gx_ref, gw_ref, gb_ref = tf_conv_grads(tf, x, w, b, gy, stride, pad, dil, True)
    g = byref(ck.geom(stride, pad, dil))

    gx = np.full(x.shape, np.nan, F32)
    lib.tt_depthwise_conv2d_grad_input_f32(vp(gy), d(oshape), vp(w), kh, kw, g, 0, vp(gx), d(x.shape))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)

    gw = np.full((kh, kw, k), np.nan, F32)
    lib.tt_depthwise_conv2d_grad_weight_f32(vp(x), d(x.shape), vp(gy), d(oshape), kh, kw, g, k,
                                            None, 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)
    # listed channels, read from a compact saved copy
    idx = ck.carray(np.arange(c)[::-1][:k], I32)
    saved = np.zeros((H, W, k), F32)
    lib.tt_save_channels_f32(vp(x), H * W, c, k, vp(idx), vp(saved))
    lib.tt_depthwise_conv2d_grad_weight_f32(vp(saved), d(saved.shape), vp(gy), d(oshape), kh, kw, g,
                                            k, vp(idx), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., idx], rtol=RTOL, atol=ATOL)

    # fused update of the listed channels == sgd of those channels with that gradient
    m = rand(rng, kh, kw, k)
    expected = w.copy()
    m_ref = m.copy()
    expected[..., idx] = sgd_np(w[..., idx], gw, 0.05, 0.5, 0.1, m_ref)
    scratch = np.zeros(kh * kw, F32)
    lib.tt_depthwise_conv2d_update_weight_f32(vp(w), vp(saved), d(saved.shape), vp(gy), d(oshape),
                                              kh, kw, g, k, vp(idx), 0.05, 0.5, 0.1, vp(m), vp(scratch))
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(m, m_ref)

    gb = np.zeros(c, F32)
    lib.tt_conv2d_grad_bias_f32(vp(gy), d(oshape), 0, vp(gb))
    np.testing.assert_allclose(gb, gb_ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("in_f,out_f,k", [(1, 1, 1), (13, 7, 5), (40, 10, 40)])
def test_fully_connected_backward_f32_vs_tf(lib, tf, in_f, out_f, k):
    rng = np.random.default_rng(14)
    x, w, gy = rand(rng, in_f), rand(rng, out_f, in_f), rand(rng, out_f)
    xv, wv = tf.Variable(x[None]), tf.Variable(w)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.matmul(xv, wv, transpose_b=True) * gy[None])
    gx_ref, gw_ref = (t.numpy() for t in tape.gradient(loss, [xv, wv]))
    gx = np.full(in_f, 7.0, F32)
    lib.tt_fully_connected_grad_input_f32(vp(gy), out_f, vp(w), in_f, 1, vp(gx))
    np.testing.assert_allclose(gx, gx_ref[0] + 7.0, rtol=RTOL, atol=ATOL)
    gw = np.full((out_f, k), np.nan, F32)
    lib.tt_fully_connected_grad_weight_f32(vp(x), k, vp(gy), out_f, 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[:, :k], rtol=RTOL, atol=ATOL)
    gb = np.ones(out_f, F32)
    lib.tt_fully_connected_grad_bias_f32(vp(gy), out_f, 1, vp(gb))
    np.testing.assert_array_equal(gb, gy + F32(1))

    m = np.zeros((out_f, k), F32)
    expected, m_ref = w.copy(), m.copy()
    expected[:, :k] = sgd_np(w[:, :k], gw, 0.1, 0.9, 0.0, m_ref)
    lib.tt_fully_connected_update_weight_f32(vp(w), in_f, vp(x), vp(gy), out_f, k, None,
                                             0.1, 0.9, 0.0, vp(m))
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(m, m_ref)


# --- int8-graph variants: int8 weights / activations, real-valued float gradients ------------

def quantized(rng, shape, scale_shape):
    q = ck.carray(rng.integers(-127, 128, size=shape), I8)
    s = ck.carray(rng.uniform(0.002, 0.05, size=scale_shape), F32)
    return q, s


@pytest.mark.parametrize("case", CONV_CASES[:3])
@pytest.mark.parametrize("per_channel", [1, 0])
def test_conv2d_backward_s8_vs_tf_on_real_values(lib, tf, case, per_channel):
    H, W, cin, cout, kh, kw, stride, pad, dil, k = case
    rng = np.random.default_rng(21)
    wq, ws = quantized(rng, (cout, kh, kw, cin), (cout if per_channel else 1,))
    xq = ck.carray(rng.integers(-128, 128, size=(H, W, cin)), I8)
    x_scale, x_zp = F32(0.03), -7
    x_real = (x_scale * (xq.astype(F32) - x_zp)).astype(F32)
    w_real = (ws.reshape(-1, 1, 1, 1) * wq.astype(F32)).astype(F32)
    oshape = out_shape(H, W, cout, kh, kw, stride, pad, dil)
    gy = rand(rng, *oshape)
    gx_ref, gw_ref, _ = tf_conv_grads(tf, x_real, w_real, np.zeros(cout, F32), gy, stride, pad, dil, False)
    g = byref(ck.geom(stride, pad, dil))
    gx = np.full(x_real.shape, np.nan, F32)
    lib.tt_conv2d_grad_input_s8(vp(gy), d(oshape), vp(wq), vp(ws), per_channel, kh, kw, g, 0, vp(gx),
                                d(xq.shape))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)
    gw = np.full((cout, kh, kw, k), np.nan, F32)
    lib.tt_conv2d_grad_weight_s8(vp(xq), d(xq.shape), x_scale, x_zp, vp(gy), d(oshape), kh, kw, g, k,
                                 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)

    # fused QAS update == weight gradient, then tt_qas_update_weight_s8 (bit for bit)
    w_plain, w_fused = wq.copy(), wq.copy()
    m_plain, m_fused = np.zeros_like(gw), np.zeros_like(gw)
    sh_plain = ck.carray(wq[..., :k], F32)
    sh_fused = sh_plain.copy()
    hp = (50.0, 0.9, 1e-3)
    lib.tt_qas_update_weight_s8(vp(w_plain), vp(gw), cout, kh * kw, cin, k, vp(ws), per_channel, *hp,
                                vp(m_plain), ck.qas_state("shadow", shadow=sh_plain))
    scratch = np.zeros(kh * kw * k, F32)
    lib.tt_conv2d_update_weight_s8(vp(w_fused), cin, vp(ws), per_channel, vp(xq), d(xq.shape), x_scale,
                                   x_zp, vp(gy), d(oshape), kh, kw, g, k, None, *hp, vp(m_fused),
                                   ck.qas_state("shadow", shadow=sh_fused), vp(scratch))
    np.testing.assert_array_equal(w_fused, w_plain)
    np.testing.assert_array_equal(m_fused, m_plain)
    np.testing.assert_array_equal(sh_fused, sh_plain)
    np.testing.assert_array_equal(w_fused[..., k:], wq[..., k:])       # untrained channels kept
    assert not np.array_equal(w_fused, wq)


def test_depthwise_backward_s8_vs_tf_on_real_values(lib, tf):
    H, W, c, _, kh, kw, stride, pad, dil, k = CONV_CASES[1]
    rng = np.random.default_rng(22)
    wq, ws = quantized(rng, (kh, kw, c), (c,))
    xq = ck.carray(rng.integers(-128, 128, size=(H, W, c)), I8)
    x_scale, x_zp = F32(0.02), 5
    x_real = (x_scale * (xq.astype(F32) - x_zp)).astype(F32)
    w_real = (ws * wq.astype(F32)).astype(F32)
    oshape = out_shape(H, W, c, kh, kw, stride, pad, dil)
    gy = rand(rng, *oshape)
    gx_ref, gw_ref, _ = tf_conv_grads(tf, x_real, w_real, np.zeros(c, F32), gy, stride, pad, dil, True)
    g = byref(ck.geom(stride, pad, dil))
    gx = np.full(x_real.shape, np.nan, F32)
    lib.tt_depthwise_conv2d_grad_input_s8(vp(gy), d(oshape), vp(wq), vp(ws), 1, kh, kw, g, 0, vp(gx),
                                          d(xq.shape))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)
    gw = np.full((kh, kw, k), np.nan, F32)
    lib.tt_depthwise_conv2d_grad_weight_s8(vp(xq), d(xq.shape), x_scale, x_zp, vp(gy), d(oshape), kh, kw,
                                           g, k, None, 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)

    w_plain, w_fused = wq.copy(), wq.copy()
    m_plain, m_fused = np.zeros_like(gw), np.zeros_like(gw)
    hp = (20.0, 0.5, 0.0)
    lib.tt_qas_update_dw_weight_s8(vp(w_plain), vp(gw), kh * kw, c, k, vp(ws), 1, *hp, vp(m_plain), None)
    scratch = np.zeros(kh * kw, F32)
    lib.tt_depthwise_conv2d_update_weight_s8(vp(w_fused), vp(ws), 1, vp(xq), d(xq.shape), x_scale, x_zp,
                                             vp(gy), d(oshape), kh, kw, g, k, None, *hp, vp(m_fused),
                                             None, vp(scratch))
    np.testing.assert_array_equal(w_fused, w_plain)
    np.testing.assert_array_equal(m_fused, m_plain)
    assert not np.array_equal(w_fused, wq)


@pytest.mark.parametrize("per_channel", [1, 0])
def test_fully_connected_backward_s8(lib, per_channel):
    in_f, out_f, k = 23, 6, 9
    rng = np.random.default_rng(23)
    wq, ws = quantized(rng, (out_f, in_f), (out_f if per_channel else 1,))
    xq = ck.carray(rng.integers(-128, 128, size=in_f), I8)
    x_scale, x_zp = F32(0.05), -128
    gy = rand(rng, out_f)
    w_real = ws.reshape(-1, 1).astype(np.float64) * wq
    x_real = float(x_scale) * (xq.astype(np.float64) - x_zp)
    gx = np.zeros(in_f, F32)
    lib.tt_fully_connected_grad_input_s8(vp(gy), out_f, vp(wq), vp(ws), per_channel, in_f, 0, vp(gx))
    np.testing.assert_allclose(gx, gy @ w_real, rtol=RTOL, atol=ATOL)
    gw = np.zeros((out_f, k), F32)
    lib.tt_fully_connected_grad_weight_s8(vp(xq), k, x_scale, x_zp, vp(gy), out_f, 0, vp(gw))
    np.testing.assert_allclose(gw, np.outer(gy, x_real[:k]), rtol=RTOL, atol=ATOL)

    idx = ck.carray(rng.permutation(in_f)[:k], I32)
    xs = ck.carray(xq[idx], I8)
    gw_idx = np.zeros((out_f, k), F32)
    lib.tt_fully_connected_grad_weight_s8(vp(xs), k, x_scale, x_zp, vp(gy), out_f, 0, vp(gw_idx))
    expected = wq.copy()
    sub = ck.carray(wq[:, idx], I8)
    lib.tt_qas_update_weight_s8(vp(sub), vp(gw_idx), out_f, 1, k, k, vp(ws), per_channel,
                                30.0, 0.0, 0.0, None, None)
    expected[:, idx] = sub
    lib.tt_fully_connected_update_weight_s8(vp(wq), in_f, vp(ws), per_channel, vp(xs), x_scale, x_zp,
                                            vp(gy), out_f, k, vp(idx), 30.0, 0.0, 0.0, None, None)
    np.testing.assert_array_equal(wq, expected)


# --- pooling, pad, softmax, add ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("case", ck.POOL_GEOMETRIES)
def test_pool2d_backward_vs_tf(lib, tf, kind, case):
    H, W, C, k, stride = case
    rng = np.random.default_rng(24)
    x = rand(rng, H, W, C)
    pad = same_pads(H, W, k, stride)
    oshape = (conv_out_size(H, k[0], stride[0], pad[0], pad[1]),
              conv_out_size(W, k[1], stride[1], pad[2], pad[3]), C)
    gy = rand(rng, *oshape)
    xv = tf.Variable(x[None])
    pool = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(pool(xv, k, stride, "SAME") * gy[None])
    gx_ref = tape.gradient(loss, xv).numpy()[0]
    gx = np.full(x.shape, 1.0, F32)
    g = byref(ck.geom(stride, pad))
    if kind == "avg":
        lib.tt_avg_pool2d_grad_input_f32(vp(gy), d(oshape), k[0], k[1], g, 1, vp(gx), d(x.shape))
    else:
        lib.tt_max_pool2d_grad_input_f32(vp(x), d(x.shape), vp(gy), d(oshape), k[0], k[1], g, 1, vp(gx))
    np.testing.assert_allclose(gx, gx_ref + 1.0, rtol=RTOL, atol=ATOL)


def test_max_pool2d_backward_s8_ties_go_to_the_first(lib):
    rng = np.random.default_rng(25)
    H, W, C, k, stride = 5, 5, 3, (3, 3), (2, 2)
    x = ck.carray(rng.integers(-3, 3, size=(H, W, C)), I8)      # many ties
    x[0, 0, 0] = -128                                          # a window of saturated values
    pad = same_pads(H, W, k, stride)
    oshape = (3, 3, C)
    gy = rand(rng, *oshape)
    ref = np.zeros(x.shape, np.float64)
    for i in range(3):
        for j in range(3):
            h0, w0 = i * 2 - pad[0], j * 2 - pad[2]
            for c in range(C):
                cells = [(h, w) for h in range(max(h0, 0), min(h0 + 3, H))
                         for w in range(max(w0, 0), min(w0 + 3, W))]
                best = max(cells, key=lambda hw: (x[hw[0], hw[1], c], -cells.index(hw)))
                ref[best[0], best[1], c] += gy[i, j, c]
    gx = np.full(x.shape, np.nan, F32)
    lib.tt_max_pool2d_grad_input_s8(vp(x), d(x.shape), vp(gy), d(oshape), 3, 3,
                                    byref(ck.geom(stride, pad)), 0, vp(gx))
    np.testing.assert_allclose(gx, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(1, 1, 5), (3, 4, 7)])
def test_global_avg_pool_backward(lib, shape):
    gy = rand(np.random.default_rng(26), shape[2])
    gx = np.full(shape, np.nan, F32)
    lib.tt_global_avg_pool_grad_input_f32(vp(gy), d(shape), 0, vp(gx))
    np.testing.assert_allclose(gx, np.broadcast_to(gy / (shape[0] * shape[1]), shape), rtol=1e-6)


def test_pad_backward_crops(lib):
    rng = np.random.default_rng(27)
    gy = rand(rng, 6, 7, 3)
    gx = np.full((3, 4, 3), 2.0, F32)
    lib.tt_pad_grad_input_f32(vp(gy), d(gy.shape), 1, 2, 0, vp(gx), d(gx.shape))
    np.testing.assert_array_equal(gx, gy[1:4, 2:6])
    lib.tt_pad_grad_input_f32(vp(gy), d(gy.shape), 1, 2, 1, vp(gx), d(gx.shape))
    np.testing.assert_array_equal(gx, gy[1:4, 2:6] * 2)


def test_softmax_backward_vs_tf(lib, tf):
    rng = np.random.default_rng(28)
    x, gy = rand(rng, 3, 11), rand(rng, 3, 11)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = tf.nn.softmax(xv)
        loss = tf.reduce_sum(y * gy)
    gx_ref = tape.gradient(loss, xv).numpy()
    ys = ck.carray(y.numpy(), F32)
    gx = np.full(x.shape, np.nan, F32)
    lib.tt_softmax_grad_input_f32(vp(ys), vp(gy), 3, 11, 0, vp(gx))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)


def test_add_grad_accumulates(lib):
    rng = np.random.default_rng(29)
    a, b = rand(rng, 19), rand(rng, 19)
    ref = a + b
    lib.tt_add_grad_f32(vp(a), vp(b), 19)
    np.testing.assert_array_equal(a, ref)


# --- masks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 8, 13, 64])
def test_masks_pack_lsb_first_and_apply(lib, n):
    rng = np.random.default_rng(30 + n)
    y = ck.carray(rng.choice([-1.0, 0.0, 0.5, 3.0, 6.0, 7.0], size=n), F32)
    for name, cond in (("tt_mask_relu_f32", y > 0), ("tt_mask_relu6_f32", (y > 0) & (y < 6))):
        mask = np.full((n + 7) // 8, 0xFF, np.uint8)       # stale bits must be cleared
        getattr(lib, name)(vp(y), n, vp(mask))
        np.testing.assert_array_equal(mask, np.packbits(cond, bitorder="little"))
        grad = rand(rng, n)
        expected = np.where(cond, grad, F32(0))
        lib.tt_mask_apply_f32(vp(grad), n, vp(mask))
        np.testing.assert_array_equal(grad, expected)
    q = ck.carray(rng.choice([-128, -100, 0, 5, 126, 127], size=n), I8)
    mask = np.full((n + 7) // 8, 0xFF, np.uint8)
    lib.tt_mask_clamp_s8(vp(q), n, -128, 126, vp(mask))
    np.testing.assert_array_equal(mask, np.packbits((q > -128) & (q < 126), bitorder="little"))


def test_save_channels_s8_listed(lib):
    x = ck.carray(np.arange(4 * 6).reshape(4, 6), I8)
    idx = ck.carray([5, 0, 3], I32)
    dst = np.zeros((4, 3), I8)
    lib.tt_save_channels_s8(vp(x), 4, 6, 3, vp(idx), vp(dst))
    np.testing.assert_array_equal(dst, x[:, [5, 0, 3]])


# --- losses ------------------------------------------------------------------------------------

def softmax64(v):
    e = np.exp(v - v.max())
    return e / e.sum()


@pytest.mark.parametrize("shift", [0.0, 1000.0, -1000.0])
def test_softmax_cross_entropy_f32(lib, shift):
    rng = np.random.default_rng(31)
    logits = ck.carray(rng.standard_normal(10) * 4 + shift, F32)
    grad = np.zeros(10, F32)
    loss = lib.tt_softmax_cross_entropy_f32(vp(logits), 10, 3, vp(grad))
    p = softmax64(logits.astype(np.float64))
    assert loss == pytest.approx(-np.log(p[3]), rel=1e-5)
    np.testing.assert_allclose(grad, p - np.eye(10)[3], rtol=RTOL, atol=1e-6)


def test_softmax_cross_entropy_bad_label_gives_no_gradient(lib):
    logits = ck.carray(np.arange(4), F32)
    grad = np.ones(4, F32)
    loss = lib.tt_softmax_cross_entropy_f32(vp(logits), 4, 4, vp(grad))
    assert np.isnan(loss) and not grad.any()


def test_softmax_cross_entropy_s8(lib):
    rng = np.random.default_rng(32)
    q = ck.carray(rng.integers(-128, 128, size=12), I8)
    scale, zp = 0.0625, -20
    grad = np.zeros(12, F32)
    loss = lib.tt_softmax_cross_entropy_s8(vp(q), 12, scale, zp, 7, vp(grad))
    p = softmax64(scale * (q.astype(np.float64) - zp))
    assert loss == pytest.approx(-np.log(p[7]), rel=1e-5)
    np.testing.assert_allclose(grad, p - np.eye(12)[7], rtol=RTOL, atol=1e-6)


def test_mse_f32(lib):
    rng = np.random.default_rng(33)
    y, t = rand(rng, 9), rand(rng, 9)
    grad = np.zeros(9, F32)
    loss = lib.tt_mse_f32(vp(y), vp(t), 9, vp(grad))
    dd = y.astype(np.float64) - t
    assert loss == pytest.approx(np.mean(dd ** 2), rel=1e-5)
    np.testing.assert_allclose(grad, 2 * dd / 9, rtol=1e-6)


# --- SGD ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.9, 5e-4), (0.0, 0.1)])
def test_sgd_update_f32_steps_exact(lib, momentum, wd):
    rng = np.random.default_rng(34)
    w, m = rand(rng, 17), (np.zeros(17, F32) if momentum else None)
    w_ref, m_ref = w.copy(), None if m is None else m.copy()
    for _ in range(3):
        g = rand(rng, 17)
        w_ref = sgd_np(w_ref, g, 0.05, momentum, wd, m_ref)
        lib.tt_sgd_update_f32(vp(w), vp(g), 17, 0.05, momentum, wd, vp(m))
    np.testing.assert_array_equal(w, w_ref)
    if m is not None:
        np.testing.assert_array_equal(m, m_ref)


def test_sgd_update_rows_f32_touches_only_trained_slice(lib):
    rng = np.random.default_rng(35)
    w, g, m = rand(rng, 6, 5), rand(rng, 6, 3), rand(rng, 6, 3)
    expected, m_ref = w.copy(), m.copy()
    expected[:, :3] = sgd_np(w[:, :3], g, 0.1, 0.9, 0.01, m_ref)
    lib.tt_sgd_update_rows_f32(vp(w), 5, vp(g), 6, 3, 0.1, 0.9, 0.01, vp(m))
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(m, m_ref)


# --- QAS ---------------------------------------------------------------------------------------

def round_half_away_exact(v: Fraction) -> int:
    n = abs(v)
    r = int(n) + (1 if n - int(n) >= Fraction(1, 2) else 0)
    return r if v >= 0 else -r


def qas_ref(q, grad, scale, lr, mom, wd, m, shadow, lo, hi):
    """tt_train_kernels.h's QAS rule: float32 steps, exact rounding (Fractions)."""
    q = np.asarray(q).astype(np.int64)
    v = shadow if shadow is not None else q.astype(F32)
    u = (grad.astype(F32) / F32(scale)).astype(F32)
    u = (u + F32(wd) * v).astype(F32)
    if m is not None:
        m[...] = (F32(mom) * m + u).astype(F32)
        u = m
    step = (F32(lr) * u).astype(F32)
    if shadow is not None:
        shadow[...] = np.clip((v - step).astype(F32), lo, hi)
        return np.array([min(max(round_half_away_exact(Fraction(float(s))), lo), hi) for s in shadow])
    return np.array([min(max(round_half_away_exact(Fraction(int(a)) - Fraction(float(s))), lo), hi)
                     for a, s in zip(q, step)])


def test_qas_weight_rounding_ties_and_saturation_exact(lib):
    # steps of exactly +-0.5 / 1.5 (ties), sub-LSB steps, and steps past the int8 range
    q = ck.carray([0, 1, -1, 3, -3, 0, 0, 126, -126, 127, -127, 100, 5, -5, 7], I8)
    # (100 - 0.50000006 is 99.49999994, which float32 would round to the tie 99.5)
    steps = np.array([0.5, 0.5, 0.5, -0.5, -0.5, -0.5, 1.5, -2.0, 2.0, 0.49999997, -300.0,
                      0.50000006, 1e-9, 1e30, -1e30], np.float64)
    scale = F32(0.25)
    grad = ck.carray(steps * float(scale), F32)      # lr = 1: step = grad / scale exactly
    expected = qas_ref(q, grad, scale, 1.0, 0.0, 0.0, None, None, -127, 127)
    assert expected.tolist() == [-1, 1, -2, 4, -3, 1, -2, 127, -127, 127, 127, 99, 5, -127, 127]
    lib.tt_qas_update_weight_s8(vp(q), vp(grad), 1, 1, 15, 15, vp(ck.carray([scale], F32)), 0,
                                1.0, 0.0, 0.0, None, None)
    assert q.tolist() == expected.tolist()


def test_qas_weight_nan_gradient_leaves_weight(lib):
    q = ck.carray([5, -9], I8)
    grad = ck.carray([np.nan, 1.0], F32)
    lib.tt_qas_update_weight_s8(vp(q), vp(grad), 1, 1, 2, 2, vp(ck.carray([1.0], F32)), 0,
                                1.0, 0.0, 0.0, None, None)
    assert q.tolist() == [5, -10]


@pytest.mark.parametrize("use_shadow", [False, True])
def test_qas_weight_momentum_decay_shadow_vs_reference(lib, use_shadow):
    rng = np.random.default_rng(36)
    out_ch, spatial, in_ch, k = 4, 3, 5, 2
    w = ck.carray(rng.integers(-127, 128, size=(out_ch, spatial, in_ch)), I8)
    scales = ck.carray(rng.uniform(0.01, 0.05, size=out_ch), F32)
    m = np.zeros((out_ch, spatial, k), F32)
    m_ref = m.copy()
    shadow = ck.carray(w[..., :k], F32) if use_shadow else None
    sh_ref = None if shadow is None else shadow.copy()
    w_ref = w.astype(np.int64)
    for _ in range(4):
        grad = rand(rng, out_ch, spatial, k, scale=0.02)
        for o in range(out_ch):
            new = qas_ref(w_ref[o, :, :k].ravel(), grad[o].ravel(), scales[o], 0.3, 0.9, 1e-2,
                          m_ref[o].reshape(-1), None if sh_ref is None else sh_ref[o].reshape(-1),
                          -127, 127)
            w_ref[o, :, :k] = new.reshape(spatial, k)
        lib.tt_qas_update_weight_s8(vp(w), vp(grad), out_ch, spatial, in_ch, k, vp(scales), 1,
                                    0.3, 0.9, 1e-2, vp(m), ck.qas_state("shadow", shadow=shadow) if use_shadow else None)
        assert w.tolist() == w_ref.tolist()
    np.testing.assert_array_equal(m, m_ref)
    if use_shadow:
        np.testing.assert_array_equal(shadow, sh_ref)


def test_qas_shadow_accumulates_sub_lsb_steps(lib):
    """Steps of 0.3 LSB never move a plain int8 weight, but do move it through a shadow."""
    scale = ck.carray([0.5], F32)
    grad = ck.carray([0.15], F32)       # step = 0.15 / 0.5 = 0.3
    plain, shadowed = ck.carray([10], I8), ck.carray([10], I8)
    shadow = ck.carray([10.0], F32)
    for _ in range(4):
        lib.tt_qas_update_weight_s8(vp(plain), vp(grad), 1, 1, 1, 1, vp(scale), 0, 1.0, 0.0, 0.0, None, None)
        lib.tt_qas_update_weight_s8(vp(shadowed), vp(grad), 1, 1, 1, 1, vp(scale), 0, 1.0, 0.0, 0.0,
                                    None, ck.qas_state("shadow", shadow=shadow))
    assert plain[0] == 10 and shadowed[0] == 9 and shadow[0] == pytest.approx(8.8, abs=1e-5)


def test_qas_dw_weight_per_channel_scales(lib):
    rng = np.random.default_rng(37)
    spatial, c, k = 9, 6, 4
    w = ck.carray(rng.integers(-127, 128, size=(spatial, c)), I8)
    scales = ck.carray(rng.uniform(0.01, 0.05, size=c), F32)
    grad = rand(rng, spatial, k, scale=0.05)
    expected = w.astype(np.int64)
    for ch in range(k):
        expected[:, ch] = qas_ref(w[:, ch], grad[:, ch], scales[ch], 0.5, 0, 0, None, None, -127, 127)
    lib.tt_qas_update_dw_weight_s8(vp(w), vp(grad), spatial, c, k, vp(scales), 1, 0.5, 0.0, 0.0, None, None)
    assert w.tolist() == expected.tolist()


def test_qas_bias_s32_exact_and_saturating(lib):
    big = 2 ** 31 - 1
    b = ck.carray([0, 1000, -1000, big - 1, -big, 2 ** 30 + 1, 7, -7], I32)
    w_scale = ck.carray([0.5, 0.25, 0.125, 1.0, 1.0, 1.0, 0.5, 0.5], F32)
    x_scale = F32(0.5)
    # steps in bias LSB: tie, fraction, tie, past INT32_MAX, past INT32_MIN, tiny at a large
    # value (no float rounding of b - step), +-2.5 ties
    steps = np.array([0.5, 1.25, -0.5, -10.0, 1e12, 0.5 + 2 ** -20, 2.5, -2.5])
    grad = ck.carray(steps * (w_scale.astype(np.float64) * float(x_scale)), F32)
    scale = (w_scale * x_scale).astype(F32)
    expected = [int(qas_ref([bi], np.array([gi]), si, 1.0, 0, 0, None, None, -2 ** 31, big)[0])
                for bi, gi, si in zip(b, grad, scale)]
    assert expected[:6] == [-1, 999, -1000, big, -2 ** 31, 2 ** 30]
    lib.tt_qas_update_bias_s32(vp(b), vp(grad), 8, vp(w_scale), 1, x_scale, 1.0, 0.0, 0.0, None, None)
    assert b.tolist() == expected
