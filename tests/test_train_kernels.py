"""The training C kernels: backward of conv2d / depthwise / fully connected / pools / pad /
softmax against TensorFlow autodiff (and numpy), in float and int8-graph variants;
partial-channel weight gradients; the fused in-place updates and bias updates; masks;
losses; the SGD and QAS rules, the integer ones compared exactly; the scratch-size
functions of tt_train_kernels.h against the Python plan."""
import re
from ctypes import POINTER, c_float, c_int32, c_void_p
from fractions import Fraction

import numpy as np
import pytest

import tinytrain
from tinytrain.ir import conv_out_size
from tinytrain.ops import unit
from tinytrain.training import qas
from tinytrain.training.program import trained_in_channels

import ckernels as ck
from ckernels import rand, same_pads
from graphs import MODELS, SPARSE, int8_graph, scheme_file

F32, I8, I32 = np.float32, np.int8, np.int32
RTOL, ATOL = 1e-4, 1e-5
P, I, F = c_void_p, c_int32, c_float
DIMS = POINTER(ck.TtDims)
S, CH, U = POINTER(ck.TtConvShape), POINTER(ck.TtChannels), POINTER(ck.TtUpdate)
AQ, WQ = POINTER(ck.TtActQuant), POINTER(ck.TtWeightQuant)

SIGNATURES = {
    "tt_conv2d_grad_input_f32": (S, P, P, I, P),
    "tt_conv2d_grad_input_s8": (S, P, P, WQ, I, P),
    "tt_conv2d_grad_weight_f32": (S, CH, P, P, I, P),
    "tt_conv2d_grad_weight_s8": (S, CH, P, AQ, P, I, P),
    "tt_conv2d_update_weight_f32": (S, CH, P, P, P, U, P),
    "tt_conv2d_update_weight_s8": (S, CH, P, WQ, P, AQ, P, U, P),
    "tt_depthwise_conv2d_grad_input_f32": (S, P, P, I, P),
    "tt_depthwise_conv2d_grad_input_s8": (S, P, P, WQ, I, P),
    "tt_depthwise_conv2d_grad_weight_f32": (S, CH, P, P, I, P),
    "tt_depthwise_conv2d_grad_weight_s8": (S, CH, P, AQ, P, I, P),
    "tt_depthwise_conv2d_update_weight_f32": (S, CH, P, P, P, U, P),
    "tt_depthwise_conv2d_update_weight_s8": (S, CH, P, WQ, P, AQ, P, U, P),
    "tt_fully_connected_grad_input_f32": (I, I, P, P, I, P),
    "tt_fully_connected_grad_input_s8": (I, I, P, P, WQ, I, P),
    "tt_fully_connected_grad_weight_f32": (I, CH, P, P, I, P),
    "tt_fully_connected_grad_weight_s8": (I, CH, P, AQ, P, I, P),
    "tt_fully_connected_update_weight_f32": (I, CH, P, P, P, U),
    "tt_fully_connected_update_weight_s8": (I, CH, P, WQ, P, AQ, P, U),
    "tt_bias_update_f32": (DIMS, P, P, U),
    "tt_bias_update_s32": (DIMS, P, P, P, U),
    "tt_avg_pool2d_grad_input_f32": (S, P, I, P),
    "tt_max_pool2d_grad_input_f32": (S, P, P, I, P),
    "tt_max_pool2d_grad_input_s8": (S, P, P, I, P),
    "tt_global_avg_pool_grad_input_f32": (DIMS, P, I, P),
    "tt_pad_grad_input_f32": (DIMS, DIMS, I, I, P, I, P),
    "tt_softmax_grad_input_f32": (I, I, P, P, I, P),
    "tt_add_grad_f32": (P, P, I),
    "tt_mask_relu_f32": (P, I, P),
    "tt_mask_relu6_f32": (P, I, P),
    "tt_mask_clamp_s8": (P, I, I, I, P),
    "tt_mask_apply_f32": (P, I, P),
    "tt_save_channels_f32": (CH, I, P, P),
    "tt_save_channels_s8": (CH, I, P, P),
    "tt_qas_shadow_init_s8": (CH, I, P, P),
    "tt_qas_shadow_init_s32": (I, P, P),
}
LOSSES = {
    "tt_softmax_cross_entropy_f32": (P, I, I, P),
    "tt_softmax_cross_entropy_s8": (P, AQ, I, I, P),
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
    return ck.ctypes.byref(ck.dims(shape))


def bias_grad(lib, oshape, gy):
    """The bias gradient the bias update computes (sum of gy over the pixels): SGD with lr 1
    from a zero bias gives exactly its negation."""
    b = np.zeros(oshape[-1], F32)
    lib.tt_bias_update_f32(d(oshape), vp(b), vp(gy), ck.update(1.0))
    return -b


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
    s = ck.conv_shape(x.shape, oshape, kh, kw, stride, pad, dil)

    gx = np.full(x.shape, np.nan, F32)
    lib.tt_conv2d_grad_input_f32(s, vp(gy), vp(w), 0, vp(gx))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)
    lib.tt_conv2d_grad_input_f32(s, vp(gy), vp(w), 1, vp(gx))
    np.testing.assert_allclose(gx, 2 * gx_ref, rtol=RTOL, atol=ATOL)

    gw = np.full((cout, kh, kw, k), np.nan, F32)
    lib.tt_conv2d_grad_weight_f32(s, ck.channels(cin, k), vp(x), vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)
    # the same from a saved copy holding only the trained channels
    saved = np.zeros((H, W, k), F32)
    lib.tt_save_channels_f32(ck.channels(cin, k), H * W, vp(x), vp(saved))
    np.testing.assert_array_equal(saved, x[..., :k])
    compact = ck.channels(cin, k, x_channels=k)
    gw2 = np.zeros_like(gw)
    lib.tt_conv2d_grad_weight_f32(s, compact, vp(saved), vp(gy), 0, vp(gw2))
    np.testing.assert_array_equal(gw2, gw)
    lib.tt_conv2d_grad_weight_f32(s, compact, vp(saved), vp(gy), 1, vp(gw2))
    np.testing.assert_allclose(gw2, 2 * gw, rtol=RTOL, atol=ATOL)

    np.testing.assert_allclose(bias_grad(lib, oshape, gy), gb_ref, rtol=RTOL, atol=ATOL)


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
    s = ck.conv_shape(x.shape, oshape, kh, kw, stride, pad, dil)
    idx = ck.carray([4, 1][:k], I32) if use_index else None
    chans = idx if use_index else np.arange(k)
    ch = ck.channels(cin, k, idx, x_channels=k)
    xs = ck.carray(x[..., chans], F32)
    gw = np.zeros((cout, kh, kw, k), F32)
    lib.tt_conv2d_grad_weight_f32(s, ch, vp(xs), vp(gy), 0, vp(gw))
    m = rand(rng, cout, kh, kw, k) if momentum else None
    m_ref = None if m is None else m.copy()
    expected = w.copy()
    expected[..., chans] = sgd_np(w[..., chans], gw, 0.1, 0.9, 0.01, m_ref)
    scratch = np.zeros(kh * kw * k, F32)
    lib.tt_conv2d_update_weight_f32(s, ch, vp(w), vp(xs), vp(gy), ck.update(0.1, 0.9, 0.01, m=m), vp(scratch))
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
    s = ck.conv_shape(x.shape, oshape, kh, kw, stride, pad, dil)

    gx = np.full(x.shape, np.nan, F32)
    lib.tt_depthwise_conv2d_grad_input_f32(s, vp(gy), vp(w), 0, vp(gx))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)

    gw = np.full((kh, kw, k), np.nan, F32)
    lib.tt_depthwise_conv2d_grad_weight_f32(s, ck.channels(c, k), vp(x), vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)
    # listed channels, read from a compact saved copy
    idx = ck.carray(np.arange(c)[::-1][:k], I32)
    ch = ck.channels(c, k, idx, x_channels=k)
    saved = np.zeros((H, W, k), F32)
    lib.tt_save_channels_f32(ch, H * W, vp(x), vp(saved))
    lib.tt_depthwise_conv2d_grad_weight_f32(s, ch, vp(saved), vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., idx], rtol=RTOL, atol=ATOL)

    # fused update of the listed channels == sgd of those channels with that gradient
    m = rand(rng, kh, kw, k)
    expected = w.copy()
    m_ref = m.copy()
    expected[..., idx] = sgd_np(w[..., idx], gw, 0.05, 0.5, 0.1, m_ref)
    scratch = np.zeros(kh * kw, F32)
    lib.tt_depthwise_conv2d_update_weight_f32(s, ch, vp(w), vp(saved), vp(gy), ck.update(0.05, 0.5, 0.1, m=m),
                                              vp(scratch))
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(m, m_ref)

    np.testing.assert_allclose(bias_grad(lib, oshape, gy), gb_ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("in_f,out_f,k", [(1, 1, 1), (13, 7, 5), (40, 10, 40)])
def test_fully_connected_backward_f32_vs_tf(lib, tf, in_f, out_f, k):
    rng = np.random.default_rng(14)
    x, w, gy = rand(rng, in_f), rand(rng, out_f, in_f), rand(rng, out_f)
    xv, wv = tf.Variable(x[None]), tf.Variable(w)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.matmul(xv, wv, transpose_b=True) * gy[None])
    gx_ref, gw_ref = (t.numpy() for t in tape.gradient(loss, [xv, wv]))
    gx = np.full(in_f, 7.0, F32)
    lib.tt_fully_connected_grad_input_f32(in_f, out_f, vp(gy), vp(w), 1, vp(gx))
    np.testing.assert_allclose(gx, gx_ref[0] + 7.0, rtol=RTOL, atol=ATOL)
    ch = ck.channels(in_f, k)
    gw = np.full((out_f, k), np.nan, F32)
    lib.tt_fully_connected_grad_weight_f32(out_f, ch, vp(x), vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[:, :k], rtol=RTOL, atol=ATOL)
    # the bias update: the gradient of bias o is grad_y[o] (one pixel)
    b = np.ones(out_f, F32)
    lib.tt_bias_update_f32(d((1, 1, out_f)), vp(b), vp(gy), ck.update(1.0))
    np.testing.assert_array_equal(b, F32(1) - gy)

    m = np.zeros((out_f, k), F32)
    expected, m_ref = w.copy(), m.copy()
    expected[:, :k] = sgd_np(w[:, :k], gw, 0.1, 0.9, 0.0, m_ref)
    lib.tt_fully_connected_update_weight_f32(out_f, ch, vp(w), vp(x), vp(gy), ck.update(0.1, 0.9, 0.0, m=m))
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(m, m_ref)


# --- int8-graph variants: int8 weights / activations, real-valued float gradients ------------

def quantized(rng, shape, scale_shape):
    q = ck.carray(rng.integers(-127, 128, size=shape), I8)
    s = ck.carray(rng.uniform(0.002, 0.05, size=scale_shape), F32)
    return q, s


def qas_np(q, grad, scale, hp, m=None, mode="nearest", state=None):
    """The update of int8 weights q (trained elements, compact) by the numpy twin of the rules
    (tinytrain.training.qas, itself checked against C in tests/test_update_modes.py)."""
    new, _ = qas.qas_step(q, grad, scale, *hp, m, mode, state, -127, 127)
    return new


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
    s = ck.conv_shape(xq.shape, oshape, kh, kw, stride, pad, dil)
    wquant, xquant = ck.weight_quant(ws, per_channel), ck.act_quant(x_scale, x_zp)
    gx = np.full(x_real.shape, np.nan, F32)
    lib.tt_conv2d_grad_input_s8(s, vp(gy), vp(wq), wquant, 0, vp(gx))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)
    ch = ck.channels(cin, k)
    gw = np.full((cout, kh, kw, k), np.nan, F32)
    lib.tt_conv2d_grad_weight_s8(s, ch, vp(xq), xquant, vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., :k], rtol=RTOL, atol=ATOL)

    # fused QAS update == weight gradient, then the update rule (bit for bit)
    w_fused = wq.copy()
    m_plain, m_fused = np.zeros_like(gw), np.zeros_like(gw)
    sh_plain = ck.carray(wq[..., :k], F32)
    sh_fused = sh_plain.copy()
    hp = (50.0, 0.9, 1e-3)
    w_plain = wq.copy()
    w_plain[..., :k] = qas_np(wq[..., :k], gw, ws.reshape(-1, 1, 1, 1), hp, m_plain, "shadow", sh_plain)
    scratch = np.zeros(kh * kw * k, F32)
    lib.tt_conv2d_update_weight_s8(s, ch, vp(w_fused), wquant, vp(xq), xquant, vp(gy),
                                   ck.update(*hp, mode="shadow", m=m_fused, shadow=sh_fused), vp(scratch))
    np.testing.assert_array_equal(w_fused, w_plain)
    np.testing.assert_array_equal(m_fused, m_plain)
    np.testing.assert_array_equal(sh_fused, sh_plain)
    np.testing.assert_array_equal(w_fused[..., k:], wq[..., k:])       # untrained channels kept
    assert not np.array_equal(w_fused, wq)


@pytest.mark.parametrize("use_index", [False, True])
def test_depthwise_backward_s8_vs_tf_on_real_values(lib, tf, use_index):
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
    s = ck.conv_shape(xq.shape, oshape, kh, kw, stride, pad, dil)
    wquant, xquant = ck.weight_quant(ws, 1), ck.act_quant(x_scale, x_zp)
    gx = np.full(x_real.shape, np.nan, F32)
    lib.tt_depthwise_conv2d_grad_input_s8(s, vp(gy), vp(wq), wquant, 0, vp(gx))
    np.testing.assert_allclose(gx, gx_ref, rtol=RTOL, atol=ATOL)
    # trained channels: the first k, or listed ones read from a compact copy
    idx = ck.carray([4, 0][:k], I32) if use_index else None
    chans = idx if use_index else np.arange(k)
    ch = ck.channels(c, k, idx, x_channels=k if use_index else c)
    xs = np.zeros((H, W, k), I8)
    lib.tt_save_channels_s8(ch, H * W, vp(xq), vp(xs))
    x_read = xs if use_index else xq
    gw = np.full((kh, kw, k), np.nan, F32)
    lib.tt_depthwise_conv2d_grad_weight_s8(s, ch, vp(x_read), xquant, vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, gw_ref[..., chans], rtol=RTOL, atol=ATOL)

    # fused == gradient, then the rule with each trained channel's own scale (bit for bit)
    m_plain, m_fused = np.zeros_like(gw), np.zeros_like(gw)
    hp = (20.0, 0.5, 0.0)
    w_plain, w_fused = wq.copy(), wq.copy()
    w_plain[..., chans] = qas_np(wq[..., chans], gw, ws[chans], hp, m_plain)
    scratch = np.zeros(kh * kw, F32)
    lib.tt_depthwise_conv2d_update_weight_s8(s, ch, vp(w_fused), wquant, vp(x_read), xquant, vp(gy),
                                             ck.update(*hp, mode="nearest", m=m_fused), vp(scratch))
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
    wquant, xquant = ck.weight_quant(ws, per_channel), ck.act_quant(x_scale, x_zp)
    gx = np.zeros(in_f, F32)
    lib.tt_fully_connected_grad_input_s8(in_f, out_f, vp(gy), vp(wq), wquant, 0, vp(gx))
    np.testing.assert_allclose(gx, gy @ w_real, rtol=RTOL, atol=ATOL)
    gw = np.zeros((out_f, k), F32)
    lib.tt_fully_connected_grad_weight_s8(out_f, ck.channels(in_f, k), vp(xq), xquant, vp(gy), 0, vp(gw))
    np.testing.assert_allclose(gw, np.outer(gy, x_real[:k]), rtol=RTOL, atol=ATOL)

    idx = ck.carray(rng.permutation(in_f)[:k], I32)
    ch = ck.channels(in_f, k, idx, x_channels=k)
    xs = np.zeros(k, I8)
    lib.tt_save_channels_s8(ch, 1, vp(xq), vp(xs))
    np.testing.assert_array_equal(xs, xq[idx])
    gw_idx = np.zeros((out_f, k), F32)
    lib.tt_fully_connected_grad_weight_s8(out_f, ch, vp(xs), xquant, vp(gy), 0, vp(gw_idx))
    expected = wq.copy()
    expected[:, idx] = qas_np(wq[:, idx], gw_idx, ws.reshape(-1, 1), (30.0, 0.0, 0.0))
    lib.tt_fully_connected_update_weight_s8(out_f, ch, vp(wq), wquant, vp(xs), xquant, vp(gy),
                                            ck.update(30.0, mode="nearest"))
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
    s = ck.conv_shape(x.shape, oshape, k[0], k[1], stride, pad)
    if kind == "avg":
        lib.tt_avg_pool2d_grad_input_f32(s, vp(gy), 1, vp(gx))
    else:
        lib.tt_max_pool2d_grad_input_f32(s, vp(x), vp(gy), 1, vp(gx))
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
    lib.tt_max_pool2d_grad_input_s8(ck.conv_shape(x.shape, oshape, 3, 3, stride, pad), vp(x), vp(gy), 0, vp(gx))
    np.testing.assert_allclose(gx, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(1, 1, 5), (3, 4, 7)])
def test_global_avg_pool_backward(lib, shape):
    gy = rand(np.random.default_rng(26), shape[2])
    gx = np.full(shape, np.nan, F32)
    lib.tt_global_avg_pool_grad_input_f32(d(shape), vp(gy), 0, vp(gx))
    np.testing.assert_allclose(gx, np.broadcast_to(gy / (shape[0] * shape[1]), shape), rtol=1e-6)


def test_pad_backward_crops(lib):
    rng = np.random.default_rng(27)
    gy = rand(rng, 6, 7, 3)
    gx = np.full((3, 4, 3), 2.0, F32)
    lib.tt_pad_grad_input_f32(d(gx.shape), d(gy.shape), 1, 2, vp(gy), 0, vp(gx))
    np.testing.assert_array_equal(gx, gy[1:4, 2:6])
    lib.tt_pad_grad_input_f32(d(gx.shape), d(gy.shape), 1, 2, vp(gy), 1, vp(gx))
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
    lib.tt_softmax_grad_input_f32(3, 11, vp(ys), vp(gy), 0, vp(gx))
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
    lib.tt_save_channels_s8(ck.channels(6, 3, idx, x_channels=3), 4, vp(x), vp(dst))
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
    loss = lib.tt_softmax_cross_entropy_s8(vp(q), ck.act_quant(scale, zp), 12, 7, vp(grad))
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
def test_sgd_rule_steps_exact(lib, momentum, wd):
    """The float SGD rule through the float bias update (one pixel: the gradient of bias i is
    grad[i])."""
    rng = np.random.default_rng(34)
    w, m = rand(rng, 17), (np.zeros(17, F32) if momentum else None)
    w_ref, m_ref = w.copy(), None if m is None else m.copy()
    u = ck.update(0.05, momentum, wd, m=m)
    for _ in range(3):
        g = rand(rng, 17)
        w_ref = sgd_np(w_ref, g, 0.05, momentum, wd, m_ref)
        lib.tt_bias_update_f32(d((1, 1, 17)), vp(w), vp(g), u)
    np.testing.assert_array_equal(w, w_ref)
    if m is not None:
        np.testing.assert_array_equal(m, m_ref)


# --- QAS ---------------------------------------------------------------------------------------

def qas_update_c(lib, q, grad, scales, u):
    """The int8 QAS rule on every element of q (scale scales[e]) through the fused fully
    connected update: one input of value 1 (scale 1, zero point 0) makes the gradient of
    weight e exactly grad[e]."""
    n = q.size
    one = np.ones(1, I8)
    lib.tt_fully_connected_update_weight_s8(n, ck.channels(1, 1), vp(q), ck.weight_quant(np.broadcast_to(scales, n), 1),
                                            vp(one), ck.act_quant(1.0, 0), vp(grad), u)


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
    qas_update_c(lib, q, grad, scale, ck.update(1.0, mode="nearest"))
    assert q.tolist() == expected.tolist()


def test_qas_weight_nan_gradient_leaves_weight(lib):
    q = ck.carray([5, -9], I8)
    grad = ck.carray([np.nan, 1.0], F32)
    qas_update_c(lib, q, grad, F32(1.0), ck.update(1.0, mode="nearest"))
    assert q.tolist() == [5, -10]


@pytest.mark.parametrize("use_shadow", [False, True])
def test_qas_weight_momentum_decay_shadow_vs_reference(lib, use_shadow):
    rng = np.random.default_rng(36)
    out_ch, spatial, k = 4, 3, 2
    w = ck.carray(rng.integers(-127, 128, size=(out_ch, spatial, k)), I8)
    scales = ck.carray(rng.uniform(0.01, 0.05, size=out_ch), F32)
    m = np.zeros((out_ch, spatial, k), F32)
    m_ref = m.copy()
    shadow = ck.carray(w, F32) if use_shadow else None
    sh_ref = None if shadow is None else shadow.copy()
    w_ref = w.astype(np.int64)
    u = ck.update(0.3, 0.9, 1e-2, mode="shadow" if use_shadow else "nearest", m=m, shadow=shadow)
    for _ in range(4):
        grad = rand(rng, out_ch, spatial, k, scale=0.02)
        for o in range(out_ch):
            new = qas_ref(w_ref[o].ravel(), grad[o].ravel(), scales[o], 0.3, 0.9, 1e-2,
                          m_ref[o].reshape(-1), None if sh_ref is None else sh_ref[o].reshape(-1),
                          -127, 127)
            w_ref[o] = new.reshape(spatial, k)
        qas_update_c(lib, w, grad, np.repeat(scales, spatial * k), u)
        assert w.tolist() == w_ref.tolist()
    np.testing.assert_array_equal(m, m_ref)
    if use_shadow:
        np.testing.assert_array_equal(shadow, sh_ref)


def test_qas_shadow_accumulates_sub_lsb_steps(lib):
    """Steps of 0.3 LSB never move a plain int8 weight, but do move it through a shadow."""
    grad = ck.carray([0.15], F32)       # step = 0.15 / 0.5 = 0.3
    plain, shadowed = ck.carray([10], I8), ck.carray([10], I8)
    shadow = ck.carray([10.0], F32)
    for _ in range(4):
        qas_update_c(lib, plain, grad, F32(0.5), ck.update(1.0, mode="nearest"))
        qas_update_c(lib, shadowed, grad, F32(0.5), ck.update(1.0, mode="shadow", shadow=shadow))
    assert plain[0] == 10 and shadowed[0] == 9 and shadow[0] == pytest.approx(8.8, abs=1e-5)


def test_qas_shadow_init_reads_the_trained_elements(lib):
    w = ck.carray(np.arange(-20, 20).reshape(8, 5), I8)     # 8 rows of 5 input channels
    shadow = np.full((8, 2), np.nan, F32)
    lib.tt_qas_shadow_init_s8(ck.channels(5, 2, [4, 1], x_channels=2), 8, vp(w), vp(shadow))
    np.testing.assert_array_equal(shadow, w[:, [4, 1]].astype(F32))
    b = ck.carray([2 ** 31 - 1, -7, 0], I32)
    sb = np.full(3, np.nan, F32)
    lib.tt_qas_shadow_init_s32(3, vp(b), vp(sb))
    np.testing.assert_array_equal(sb, b.astype(F32))


def test_qas_bias_s32_exact_and_saturating(lib):
    big = 2 ** 31 - 1
    lo, hi = qas.INT_RANGE["int32"]          # +-2^30 (tests/test_bias_range.py: why)
    b = ck.carray([0, 1000, -1000, big - 1, -big, 2 ** 29 + 1, 7, -7], I32)
    w_scale = ck.carray([0.5, 0.25, 0.125, 1.0, 1.0, 1.0, 0.5, 0.5], F32)
    x_scale = F32(0.5)
    # steps in bias LSB: tie, fraction, tie, from beyond the range and past its top, past
    # its bottom, tiny at a large value (no float rounding of b - step), +-2.5 ties
    steps = np.array([0.5, 1.25, -0.5, -10.0, 1e12, 0.5 + 2 ** -20, 2.5, -2.5])
    grad = ck.carray(steps * (w_scale.astype(np.float64) * float(x_scale)), F32)
    scale = (w_scale * x_scale).astype(F32)
    expected = [int(qas_ref([bi], np.array([gi]), si, 1.0, 0, 0, None, None, lo, hi)[0])
                for bi, gi, si in zip(b, grad, scale)]
    assert expected[:6] == [-1, 999, -1000, hi, lo, 2 ** 29]
    lib.tt_bias_update_s32(d((1, 1, 8)), vp(b), vp(scale), vp(grad), ck.update(1.0, mode="nearest"))
    assert b.tolist() == expected


# --- scratch sizes: the C functions of tt_train_kernels.h agree with the Python plan -------------------

SCRATCH_CALL = re.compile(r"\b(tt_(conv2d|depthwise_conv2d)_update_weight_(?:s8|f32))\((&\w+), (&\w+), [^;]*, (\w+)\);")


@pytest.mark.parametrize("model,quantized,scheme", [
    ("dwsep", False, "full"), ("residual", False, SPARSE), ("cnn", True, "full"), ("dwsep", True, SPARSE)])
def test_scratch_size_functions_agree_with_the_python_plan(tmp_path, model, quantized, scheme):
    """tt_<op>_update_weight_scratch on the very structs model.c passes == the op unit's
    update_scratch == the planned scratch buffer, for every fused weight update (all
    channels, and a partial update of half of them)."""
    g = int8_graph(model) if quantized else MODELS[model]()
    m = tinytrain.compile(g, scheme=scheme if isinstance(scheme, str) else scheme_file(tmp_path, scheme))
    files = m.emission.render()
    calls = SCRATCH_CALL.findall(files["model.c"])
    assert calls
    prog = m.program
    views = m.emission.em.views
    steps = {views[(b.scratch, "float32")].cname: b for b in prog.backward if b.scratch}
    shim = ['#include "model.c"']
    for i, (_, op_type, shape, ch, _) in enumerate(calls):
        shim.append(f"int32_t tt_test_scratch_{i}(void) {{ return tt_{op_type}_update_weight_scratch({shape}, {ch}); }}")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "shim.c").write_text("\n".join(shim) + "\n")
    lib = ck.load_kernels(extra_sources=[tmp_path / "shim.c", tmp_path / "model_data.c", *m.kernel_files()],
                          pattern=None, build_dir=tmp_path, include_dirs=[tmp_path])
    for i, (_, _, _, _, scratch_view) in enumerate(calls):
        b = steps[scratch_view]
        op = next(o for o in prog.graph.ops if o.name == b.op)
        k = trained_in_channels(prog.graph, op, b.update)
        python = unit(op.type).update_scratch(prog.graph, op, k)
        c = ck.declare(lib, f"tt_test_scratch_{i}", restype=c_int32)()
        assert c == python == prog.buffers[b.scratch].shape[0] > 0, (b.op, c, python)
