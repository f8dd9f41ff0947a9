"""The training C kernels: backward of conv2d / depthwise / fully connected / pools / pad /
softmax against TensorFlow autodiff (and numpy), in float and int8-graph variants;
partial-channel weight gradients; the fused in-place updates; masks; losses; SGD and
QAS updates, the integer ones compared exactly."""
from ctypes import POINTER, byref, c_float, c_int8, c_int32, c_uint8, c_void_p
from fractions import Fraction

import numpy as np
import pytest

from tinytrain.ir import conv_out_size, same_padding

import ckernels as ck

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
    "tt_qas_update_bias_s32": (P, P, I, P, I, F, F, F, F, P),
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


def rand(rng, *shape, scale=1.0):
    return ck.carray(rng.standard_normal(shape) * scale, F32)


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
