"""Update modes of int8 / int32 parameters (nearest, fp32 shadow, 8-bit residual, stochastic
rounding): the C rules (tt_update_rules.h) equal their numpy twin (tinytrain/training/qas.py)
bit for bit on many inputs; each mode does what it promises with sub-step updates; the
memory plan and model.h count what each keeps; a weights push re-derives the update state."""
import re

import numpy as np
import pytest

import ckernels as ck
from conftest import ROOT
from tinytrain.training import qas
from tinytrain.training.host import HostTrainer
from tinytrain.training.memory import memory_report
from tinytrain.training.program import build_program

from graphs import int8_graph

F32, I8, I32 = np.float32, np.int8, np.int32
P, I, F = ck.ctypes.c_void_p, ck.ctypes.c_int32, ck.ctypes.c_float
MODES = list(qas.UPDATE_MODES)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = ck.load_kernels(pattern="*.c", build_dir=tmp_path_factory.mktemp("ck_update"))
    S, CH, U = (ck.ctypes.POINTER(t) for t in (ck.TtConvShape, ck.TtChannels, ck.TtUpdate))
    AQ, WQ, DIMS = (ck.ctypes.POINTER(t) for t in (ck.TtActQuant, ck.TtWeightQuant, ck.TtDims))
    ck.declare(lib, "tt_fully_connected_update_weight_s8", I, CH, P, WQ, P, AQ, P, U)
    ck.declare(lib, "tt_bias_update_s32", DIMS, P, P, P, U)
    ck.declare(lib, "tt_depthwise_conv2d_grad_weight_s8", S, CH, P, AQ, P, I, P)
    ck.declare(lib, "tt_depthwise_conv2d_update_weight_s8", S, CH, P, WQ, P, AQ, P, U, P)
    return lib


def vp(a):
    return None if a is None else a.ctypes.data_as(ck.ctypes.c_void_p)


def test_mode_codes_are_the_c_headers():
    text = (ROOT / "firmware" / "include" / "tt_train_kernels.h").read_text()
    codes = {m.lower(): int(c) for m, c in re.findall(r"#define TT_UPDATE_(\w+)\s+(\d+)", text)}
    assert codes == {**{m.name: m.code for m in qas.UPDATE_MODES.values()}, "float": qas.FLOAT_UPDATE.code,
                     "master": qas.MASTER_UPDATE.code}
    assert ck.UPDATE_CODES == codes
    rules = (ROOT / "firmware" / "include" / "tt_update_rules.h").read_text()
    assert f"#define TT_RNG_GAMMA 0x{int(qas.RNG_GAMMA):08X}u" in rules


class ModeState:
    """A mode's state for an update of `shape` elements, as C arrays and as numpy twins."""

    def __init__(self, mode, q, rng_seed):
        self.mode = mode
        self.shadow = ck.carray(q, F32) if mode == "shadow" else None
        self.residual = np.zeros(q.shape, I8) if mode == "residual" else None
        self.rng = ck.TtRng(rng_seed)
        self.np_state = {"shadow": None if self.shadow is None else self.shadow.copy(),
                         "residual": None if self.residual is None else self.residual.copy(),
                         "stochastic": rng_seed}.get(mode)

    def c_update(self, hp, m):
        """byref(tt_update) of this mode's state, hyper-parameters hp, momentum m."""
        return ck.update(*hp, mode=self.mode, m=m, shadow=self.shadow, residual=self.residual, rng=self.rng)

    def step_numpy(self, q, grad, s, hp, m, lo, hi):
        new, rng = qas.qas_step(q, grad, s, *hp, m, self.mode, self.np_state, lo, hi)
        if rng is not None:
            self.np_state = rng
        return new

    def assert_equal(self):
        if self.mode == "shadow":
            np.testing.assert_array_equal(self.shadow.view(np.uint32), self.np_state.view(np.uint32))
        elif self.mode == "residual":
            np.testing.assert_array_equal(self.residual, self.np_state)
        elif self.mode == "stochastic":
            assert self.rng.state == self.np_state


def hard_gradients(rng, shape, scale):
    """Steps (lr = 1) from 1e-6 to 1e3 quantization steps, both signs, exact ties, zeros,
    saturating ones and a few NaN."""
    mag = 10.0 ** rng.uniform(-6, 3, size=shape)
    steps = np.where(rng.random(shape) < 0.5, -mag, mag)
    flat = steps.reshape(-1)
    flat[::11] = np.round(flat[::11]) + 0.5       # ties
    flat[5::17] = 0.0
    flat[7::23] = 1e6
    flat[9::29] = np.nan
    return (steps * scale).astype(F32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("optim", ["plain", "momentum_decay"])
def test_int8_weight_rule_c_equals_numpy_bit_for_bit(lib, mode, optim):
    """Through the fused fully connected update with one input of value 1 (scale 1, zero
    point 0): the gradient of weight [o][0] is exactly grad[o], with scale scales[o]; the
    second input is not trained."""
    rng = np.random.default_rng(MODES.index(mode) * 10 + len(optim))
    n = 225
    w = ck.carray(rng.integers(-127, 128, size=(n, 2)), I8)
    w[:3, 0] = [127, -127, 0]
    frozen = w[:, 1].copy()
    scales = ck.carray(rng.uniform(0.005, 0.05, size=n), F32)
    hp = (0.7, 0.9, 1e-3) if optim == "momentum_decay" else (0.7, 0.0, 0.0)
    m = np.zeros(n, F32) if optim == "momentum_decay" else None
    m_np = None if m is None else m.copy()
    st = ModeState(mode, w[:, 0], rng_seed=0xDEADBEEF)
    q_np = w[:, 0].astype(np.int64)
    one = np.ones(1, I8)
    for _ in range(6):
        grad = hard_gradients(rng, (n,), scales)
        lib.tt_fully_connected_update_weight_s8(n, ck.channels(2, 1, x_channels=1), vp(w), ck.weight_quant(scales, 1),
                                                vp(one), ck.act_quant(1.0, 0), vp(grad), st.c_update(hp, m))
        q_np = st.step_numpy(q_np, grad, scales, hp, m_np, -127, 127)
        np.testing.assert_array_equal(w[:, 0], q_np)
        np.testing.assert_array_equal(w[:, 1], frozen)
        st.assert_equal()
        if m is not None:
            np.testing.assert_array_equal(m.view(np.uint32), m_np.view(np.uint32))


@pytest.mark.parametrize("mode", MODES)
def test_int32_bias_rule_c_equals_numpy_bit_for_bit(lib, mode):
    rng = np.random.default_rng(40 + MODES.index(mode))
    n = 64
    b = ck.carray(rng.integers(-2 ** 20, 2 ** 20, size=n), I32)
    b[:4] = [2 ** 31 - 1, -2 ** 31, 2 ** 31 - 3, 2 ** 30 + 1]
    scale = ck.carray(rng.uniform(1e-5, 1e-3, size=n), F32)
    hp = (0.3, 0.5, 1e-4)
    m, m_np = np.zeros(n, F32), np.zeros(n, F32)
    st = ModeState(mode, b, rng_seed=12345)
    q_np = b.astype(np.int64)
    for _ in range(6):
        grad = hard_gradients(rng, (n,), scale)
        grad[0], grad[1] = -1e9 * scale[0], 1e9 * scale[1]       # past INT32_MAX / INT32_MIN
        lib.tt_bias_update_s32(ck.ctypes.byref(ck.dims((1, 1, n))), vp(b), vp(scale), vp(grad), st.c_update(hp, m))
        q_np = st.step_numpy(q_np, grad, scale, hp, m_np, *qas.INT_RANGE["int32"])     # +-2^30
        np.testing.assert_array_equal(b, q_np)
        st.assert_equal()
        np.testing.assert_array_equal(m.view(np.uint32), m_np.view(np.uint32))


def test_fused_depthwise_update_draws_the_same_random_numbers_as_the_numpy_twin(lib):
    """The fused depthwise kernel visits the weights channel by channel, the numpy twin in
    memory order (pixel by pixel): stochastic rounding must not depend on the visiting
    order."""
    rng = np.random.default_rng(3)
    H = W = 6
    c, kh, kw, k = 5, 3, 3, 4
    wq = ck.carray(rng.integers(-127, 128, size=(kh, kw, c)), I8)
    ws = ck.carray(rng.uniform(0.01, 0.03, size=c), F32)
    xq = ck.carray(rng.integers(-128, 128, size=(H, W, c)), I8)
    gy = ck.rand(rng, H, W, c)
    s = ck.conv_shape(xq.shape, gy.shape, kh, kw, (1, 1), (1, 1, 1, 1))
    ch, xquant = ck.channels(c, k), ck.act_quant(F32(0.02), 3)
    gw = np.zeros((kh, kw, k), F32)
    lib.tt_depthwise_conv2d_grad_weight_s8(s, ch, vp(xq), xquant, vp(gy), 0, vp(gw))
    hp = (3.0, 0.0, 0.0)
    w_plain, w_fused = wq.copy(), wq.copy()
    w_plain[..., :k], state = qas.qas_step(wq[..., :k], gw, ws[:k], *hp, None, "stochastic", 99, -127, 127)
    r_fused = ck.TtRng(99)
    scratch = np.zeros(kh * kw, F32)
    lib.tt_depthwise_conv2d_update_weight_s8(s, ch, vp(w_fused), ck.weight_quant(ws, 1), vp(xq), xquant,
                                             vp(gy), ck.update(*hp, mode="stochastic", rng=r_fused), vp(scratch))
    np.testing.assert_array_equal(w_fused, w_plain)
    assert r_fused.state == state == qas.rng_advance(99, kh * kw * k)
    assert not np.array_equal(w_fused, wq)


@pytest.mark.parametrize("mode", MODES)
def test_sub_step_updates_accumulate_except_when_rounded_to_nearest(mode):
    """20 steps of 0.3 quantization steps on 4096 weights at 10: nearest never moves them;
    the shadow and the residual reach 10 - 6 = 4 (the residual to within 1/256 per step);
    stochastic rounding gets there on average, unbiased."""
    n = 4096
    q = np.full(n, 10, np.int64)
    st = {"shadow": np.full(n, 10.0, F32), "residual": np.zeros(n, I8), "stochastic": 7}.get(mode)
    for _ in range(20):
        q, rng = qas.qas_step(q, np.full(n, 0.3, F32), F32(1.0), 1.0, 0.0, 0.0, None, mode, st, -127, 127)
        if rng is not None:
            st = rng
    if mode == "nearest":
        assert np.all(q == 10)
    elif mode == "stochastic":
        assert abs(q.mean() - 4.0) < 4 * np.sqrt(20 * 0.3 * 0.7 / n)    # 4 sigma of the mean
        assert set(np.unique(q)) <= set(range(-10, 11))      # 10 - Binomial(20, 0.3)
    else:
        assert np.all(q == 4)
        if mode == "residual":      # 0.3 * 256 = 76.8 rounds to 77: 4 - 4/256
            assert np.all(st == -4)


def test_stochastic_draws_are_uniform():
    u = qas.rng_uniform(0x2545F491, 1 << 16)
    assert u.min() >= 0 and u.max() < 1
    hist = np.histogram(u, bins=16, range=(0, 1))[0]
    expected = len(u) / 16
    chi2 = ((hist - expected) ** 2 / expected).sum()
    assert chi2 < 37.7                    # p = 0.001 for 15 degrees of freedom
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("mode", MODES)
def test_memory_plan_and_model_h_count_what_the_update_keeps(tmp_path, mode):
    g = int8_graph("cnn")
    prog = build_program(g, "last:2", update=mode, momentum=True)
    mem = memory_report(prog)
    plain = memory_report(build_program(g, "last:2", update="nearest"))
    elements = sum(g.tensors[t].size for t in ("fc.weight", "fc.bias", "conv2.weight", "conv2.bias"))
    extra = {"nearest": 0, "shadow": 4 * elements, "residual": elements, "stochastic": 4}[mode]
    assert mem["update_mode"] == mode and mem["update_state_bytes"] == extra
    assert mem["momentum_bytes"] == 4 * elements
    assert mem["trainable_param_bytes"] == plain["trainable_param_bytes"] + 4 * elements + extra
    assert mem["total_sram_bytes"] == mem["arena_bytes"] + mem["trainable_param_bytes"]
    with HostTrainer.build(g, "last:2", tmp_path, update=mode, momentum=True, reorder=False) as ht:
        assert ht.trainable_bytes == mem["trainable_param_bytes"]
    header = (tmp_path / "model.h").read_text()
    assert f"#define TT_UPDATE_MODE       {qas.UPDATE_MODES[mode].code}" in header
    assert f'#define TT_UPDATE_MODE_NAME  "{mode}"' in header
    assert f"#define TT_UPDATE_EXTRA_BYTES {extra}u" in header


def test_float_models_have_no_update_mode():
    from graphs import MODELS
    from tinytrain.errors import TinyTrainError
    g = MODELS["cnn"]()
    assert build_program(g, "last:1").update == "float"
    with pytest.raises(TinyTrainError, match="update modes are for int8 parameters"):
        build_program(g, "last:1", update="residual")
    with pytest.raises(TinyTrainError, match="unknown update mode 'round'"):
        build_program(int8_graph("cnn"), "last:1", update="round")


def int8_samples(g, n, seed):
    t = g.tensors["input"]
    x = np.random.default_rng(seed).standard_normal((n,) + t.shape)
    return np.clip(np.round(x / t.scale) + t.zero_point, -128, 127).astype(np.int8), \
        np.random.default_rng(seed + 1).integers(0, 3, size=n)


@pytest.mark.parametrize("mode", MODES)
def test_a_weights_push_leaves_no_update_state_of_the_old_weights(tmp_path, mode):
    """Train, push other weights (written through tt_model_param as the link does, then
    tt_model_reset_optimizer), train one step: the result equals a fresh build that starts
    from the pushed weights. Without the reset, the momentum, shadow or residual of the old
    weights would still act (checked too, so the comparison can tell)."""
    g = int8_graph("cnn")
    xs, ys = int8_samples(g, 24, 5)
    kw = dict(update=mode, momentum=True, reorder=False, lr=0.05)
    with HostTrainer.build(g, "last:2", tmp_path / "a", **kw) as a, \
            HostTrainer.build(g, "last:2", tmp_path / "b", **kw) as b:
        for h in (a, b):
            h.set_hparams(0.05, 0.9, 0.0)
        a.train_many(xs[:20], ys[:20])
        pushed = {k: v.copy() for k, v in b.params().items()}
        for k_ in pushed:      # something else than what either holds
            pushed[k_] = np.clip(pushed[k_].astype(np.int64) + (1 if pushed[k_].dtype == np.int8 else 37),
                                 np.iinfo(pushed[k_].dtype).min + 1, np.iinfo(pushed[k_].dtype).max).astype(
                pushed[k_].dtype)
        for h in (a, b):
            h.set_params(pushed)          # 'S', 'R' (and 'E': the compiled seed)
            h.set_update_seed(77)
            h.train_many(xs[20:22], ys[20:22])
        got, want = a.params(), b.params()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        # the same without the reset: the old state survives the push
        a.train_many(xs[:20], ys[:20])
        b.set_params(pushed)
        data = b"".join(np.ascontiguousarray(pushed[n]).tobytes() for n, _, _ in a.param_specs)
        a._send(b"S" + data)
        for h in (a, b):
            h.set_update_seed(77)
            h.train_many(xs[20:22], ys[20:22])
        got, want = a.params(), b.params()
        assert any(not np.array_equal(got[n], want[n]) for n in want)
