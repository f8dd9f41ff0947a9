"""Memory passes (tinytrain.passes): the fused pointwise+depthwise and in-place depthwise
kernels are bit-identical to the unfused / out-of-place ones, whole models keep their
outputs, the planned arenas drop, and training over a rewritten frozen prefix is unchanged."""
from ctypes import byref

import numpy as np
import pytest

from tinytrain.ops.conv2d import conv2d_s8
from tinytrain.ops.depthwise_conv2d import depthwise_conv2d_s8
from tinytrain.refops import run_graph
from tinytrain.errors import UnsupportedError
from tinytrain.frontends import load_model
from tinytrain.hostmodel import HostModel
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.passes import FUSED, frozen_prefix, optimize_for_memory, scratch_bytes
from tinytrain.planner import check_plan, graph_buffers, plan_graph
from tinytrain.training.memory import memory_report
from tinytrain.training.program import build_program
from tinytrain.training.scheme import bind_scheme

import ckernels as ck
from conftest import REFERENCE_MODELS
from ckernels import I8, I32, out_hw_of, rand_requant, same_pad

CANARY = 0x5A


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="*_s8*.c", build_dir=tmp_path_factory.mktemp("ck_mem"))


def guarded(n):
    """n bytes of scratch followed by 64 canary bytes (overruns show up)."""
    return np.full(n + 64, CANARY, dtype=I8)


# (H, W, Cin, Cmid, kernel, stride, dilation, pad, act_pw, act_dw)
FUSED_CASES = [
    (9, 7, 3, 5, 3, 1, 1, "same", "relu6", "none"),
    (8, 8, 4, 6, 3, 2, 1, "same", "relu", "relu6"),      # stride 2, asymmetric SAME pad
    (11, 6, 5, 7, 5, 2, 1, "same", "none", "relu"),      # kernel 5, odd channels
    (10, 9, 2, 3, 7, 1, 1, "same", "relu6", "none"),     # kernel 7
    (1, 9, 3, 5, 3, 1, 1, "same", "relu", "none"),       # one-row image
    (1, 1, 6, 4, 3, 2, 1, "same", "none", "none"),       # one pixel
    (9, 9, 3, 5, 3, 1, 2, "same", "none", "relu"),       # dilation 2
    (7, 8, 4, 5, 3, 2, 1, "valid", "relu", "none"),      # valid, stride 2
    (6, 5, 3, 9, 3, 3, 1, (0, 2, 1, 1), "none", "none"),  # stride > kernel: skipped rows
]


def _fused_setup(case, rng):
    h, w, cin, cmid, k, s, d, pad, act_pw, act_dw = case
    if pad == "same":
        pad = same_pad(h, w, (k, k), (s, s), (d, d))
    elif pad == "valid":
        pad = (0, 0, 0, 0)
    x = rng.integers(-128, 128, size=(h, w, cin), dtype=I8)
    w_pw = rng.integers(-128, 128, size=(cmid, 1, 1, cin), dtype=I8)
    b_pw = rng.integers(-3000, 3000, size=cmid).astype(I32)
    w_dw = rng.integers(-128, 128, size=(k, k, cmid), dtype=I8)
    b_dw = rng.integers(-3000, 3000, size=cmid).astype(I32)
    q_pw = rand_requant(rng, cmid, act_pw, int(rng.integers(-100, 0)), acc_std=128 * 74 * np.sqrt(cin))
    q_pw["in_zp"] = int(rng.integers(-20, 20))
    q_dw = rand_requant(rng, cmid, act_dw, int(rng.integers(-100, 20)), acc_std=128 * 74 * k)
    q_dw["in_zp"] = q_pw["out_zp"]          # the intermediate's zero point, as in a graph
    return x, w_pw, b_pw, q_pw, w_dw, b_dw, q_dw, (k, (s, s), pad, (d, d))


@pytest.mark.parametrize("case", range(len(FUSED_CASES)))
def test_fused_kernel_equals_pointwise_then_depthwise(lib, case):
    rng = np.random.default_rng(300 + case)
    x, w_pw, b_pw, q_pw, w_dw, b_dw, q_dw, (k, stride, pad, dil) = _fused_setup(FUSED_CASES[case], rng)
    h, w, _ = x.shape
    cmid = w_pw.shape[0]
    out_hw = out_hw_of(h, w, (k, k), stride, pad, dil)
    mid = conv2d_s8(x, w_pw, b_pw, (1, 1), (0, 0, 0, 0), (1, 1), q_pw, (h, w))
    want = depthwise_conv2d_s8(mid, w_dw, b_dw, stride, pad, dil, q_dw, out_hw)
    assert len(np.unique(want)) > 3 or want.size < 8
    min_rows = min((k - 1) * dil[0] + 1, h)
    for rows in (min_rows, min_rows + 2):        # the smallest ring, and a roomier one
        ring = guarded(rows * w * cmid)
        got = np.zeros((*out_hw, cmid), dtype=I8)
        lib.tt_pointwise_depthwise_conv2d_s8(
            ck.ptr(x), byref(ck.dims(x.shape)), ck.ptr(w_pw), ck.ptr(b_pw), byref(ck.requant(q_pw)), cmid,
            ck.ptr(w_dw), ck.ptr(b_dw), k, k, byref(ck.geom(stride, pad, dil)), byref(ck.requant(q_dw)),
            ck.ptr(got), byref(ck.dims(got.shape)), ck.ptr(ring), rows)
        np.testing.assert_array_equal(got, want, err_msg=f"ring of {rows} rows")
        assert np.all(ring[rows * w * cmid:] == CANARY), "ring overrun"


# (H, W, C, kernel, dilation, act)
INPLACE_CASES = [(7, 9, 5, 3, 1, "relu6"), (6, 6, 3, 5, 1, "none"), (9, 8, 6, 7, 1, "relu"),
                 (1, 7, 3, 3, 1, "none"), (8, 8, 4, 3, 2, "relu"), (1, 1, 7, 3, 1, "relu6")]


@pytest.mark.parametrize("case", range(len(INPLACE_CASES)))
def test_inplace_depthwise_equals_depthwise(lib, case):
    h, w, c, k, d, act = INPLACE_CASES[case]
    rng = np.random.default_rng(400 + case)
    x = rng.integers(-128, 128, size=(h, w, c), dtype=I8)
    wt = rng.integers(-128, 128, size=(k, k, c), dtype=I8)
    bias = rng.integers(-3000, 3000, size=c).astype(I32)
    q = rand_requant(rng, c, act, int(rng.integers(-100, 0)), acc_std=128 * 74 * k)
    q["in_zp"] = int(rng.integers(-20, 20))
    pad = same_pad(h, w, (k, k), (1, 1), (d, d))
    want = depthwise_conv2d_s8(x, wt, bias, (1, 1), pad, (d, d), q, (h, w))
    g = ck.geom((1, 1), pad, (d, d))
    for inplace in (True, False):
        buf = x.copy()
        y = buf if inplace else np.zeros_like(x)
        plane = guarded(h * w)
        lib.tt_depthwise_conv2d_inplace_s8(ck.ptr(buf), byref(ck.dims(x.shape)), ck.ptr(wt), ck.ptr(bias),
                                           k, k, byref(g), byref(ck.requant(q)), ck.ptr(y),
                                           byref(ck.dims(x.shape)), ck.ptr(plane))
        np.testing.assert_array_equal(y, want, err_msg=f"inplace={inplace}")
        assert np.all(plane[h * w:] == CANARY), "plane overrun"


# --- the passes on graphs -------------------------------------------------------------------

@pytest.fixture(scope="module", params=REFERENCE_MODELS)
def model(request, tte_models):
    g = load_model(tte_models / f"{request.param}.json")
    return request.param, g, optimize_for_memory(g)


def test_passes_rewrite_and_plans_hold(model):
    name, g, g2 = model
    fused = [op for op in g2.ops if op.type == FUSED]
    assert fused and len(g2.ops) == len(g.ops) - len(fused)
    for op in fused:
        mid = g2.tensors[op.attrs["intermediate"]]
        kh = g2.tensors[op.inputs[3]].shape[0]
        # the ring of kh rows, not the expanded tensor (all of it when it has <= kh rows)
        assert scratch_bytes(g2, op) == min(kh, mid.shape[1]) * mid.shape[2] * mid.shape[3]
    buffers, _ = graph_buffers(g2)
    p2 = plan_graph(g2)
    check_plan(buffers, p2)
    before = plan_graph(g).arena_bytes
    assert p2.arena_bytes < before
    # in-place depthwise ops whose input dies there sit on their input
    inplace = [op for op in g2.ops if op.attrs.get("inplace")]
    assert inplace
    for op in inplace:
        if len(g2.consumers(op.inputs[0])) == 1:
            assert p2.offsets[op.outputs[0]] == p2.offsets[op.inputs[0]], op.name
    if name == "mcunet-5fps":
        assert before == 160 * 1024 and p2.arena_bytes <= 112 * 1024   # measured: 160 KB -> 112 KB


def test_generated_c_of_rewritten_model_equals_original(model, tmp_path):
    _, g, g2 = model
    x = np.random.default_rng(5).integers(-128, 128, size=(2,) + g.tensors[g.inputs[0]].shape[1:], dtype=I8)
    got = HostModel(g2, tmp_path).run(x)
    for i in range(len(x)):
        want = run_graph(g, {g.inputs[0]: x[i:i + 1]})[g.outputs[0]].reshape(-1)
        np.testing.assert_array_equal(got[i], want, err_msg=f"sample {i}")
        ref2 = run_graph(g2, {g.inputs[0]: x[i:i + 1]})[g.outputs[0]].reshape(-1)
        np.testing.assert_array_equal(ref2, want)
    assert len(np.unique(got)) > 20


def test_float_graphs_are_left_alone():
    from graphs import MODELS
    g = MODELS["residual"]()
    assert optimize_for_memory(g) is g


def test_fusion_needs_a_single_consumer_and_follows_frozen_ops():
    from graphs import int8_graph
    g = int8_graph("residual")            # stem -> expand(1x1) -> dw -> project -> add(stem)
    g2 = optimize_for_memory(g)
    assert [op.type for op in g2.ops][:3] == ["conv2d", FUSED, "conv2d"]
    assert g2.ops[1].attrs["pw_name"] == "expand" and g2.ops[1].attrs["dw_name"] == "dw"
    # a second reader of the expanded tensor: no fusion
    mid = g.tensors[g.ops[1].outputs[0]]
    tensors = {**g.tensors, "peek_out": Tensor("peek_out", mid.shape, "int8", mid.quant)}
    ops = [*g.ops[:3], Op("peek", "relu", [mid.name], ["peek_out"]), *g.ops[3:]]
    g3 = Graph(g.name, tensors, ops, g.inputs, g.outputs).validate()
    assert all(op.type != FUSED for op in optimize_for_memory(g3).ops)
    # only frozen ops are rewritten: the prefix before the first trained layer
    scheme = bind_scheme("last:2", g)
    assert frozen_prefix(g, scheme) == {"stem", "expand", "dw"}
    assert all(op.type != FUSED for op in optimize_for_memory(g, {"stem", "expand"}).ops)


# --- training over a rewritten frozen prefix -------------------------------------------------

@pytest.mark.parametrize("model_name,scheme", [("residual", "last:2"), ("dwsep", "last:1")])
def test_training_step_unchanged_by_passes_on_the_frozen_prefix(tmp_path, model_name, scheme):
    from tinytrain.training.host import HostTrainer
    from graphs import int8_graph, int8_inputs
    g = int8_graph(model_name)
    bound = bind_scheme(scheme, g)
    g2 = optimize_for_memory(g, frozen_prefix(g, bound))
    assert any(op.type == FUSED or op.attrs.get("inplace") for op in g2.ops)
    m1, m2 = memory_report(build_program(g, bound)), memory_report(build_program(g2, bound))
    assert m2["arena_bytes"] <= m1["arena_bytes"]
    xs = int8_inputs(g, 3, 9)
    runs = []
    for graph, sub in ((g, "plain"), (g2, "passes")):
        with HostTrainer.build(graph, bound, tmp_path / sub, lr=0.05, reorder=False) as ht:
            runs.append((ht.train_many(xs, [1, 0, 2]), ht.params(), ht.infer(xs)))
    (l1, p1, y1), (l2, p2, y2) = runs
    assert l1 == l2
    for name in p1:
        np.testing.assert_array_equal(p1[name], p2[name], err_msg=name)
    np.testing.assert_array_equal(y1, y2)


def test_fused_op_in_the_trained_part_is_rejected():
    from graphs import int8_graph
    g = int8_graph("residual")
    g2 = optimize_for_memory(g)              # fused without regard to the scheme
    with pytest.raises(UnsupportedError, match="expand\\+dw"):
        build_program(g2, bind_scheme("full", g))


def test_simulation_runs_the_fused_graph_like_the_original():
    """The numpy training simulation accepts the fused op of the frozen part and gives the
    same step as on the original graph."""
    from tinytrain.frontends import load_model
    from tinytrain.passes import frozen_prefix, optimize_for_memory
    from tinytrain.training.program import build_program
    from tinytrain.training.scheme import bind_scheme
    from tinytrain.training.simulate import Trainer
    from conftest import TTE_MODELS
    if not TTE_MODELS.is_dir():
        pytest.skip("reference models not available")
    g = load_model(TTE_MODELS / "proxyless-w0.3.json")
    scheme = bind_scheme("bias-only:2", g)
    fused = optimize_for_memory(g, frozen_prefix(g, scheme))
    assert any(op.type == "pointwise_depthwise_conv2d" for op in fused.ops)
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 128, 128, 3), dtype=np.int8)
    a = Trainer(build_program(g, scheme), lr=0.01).step(x, 3)
    b = Trainer(build_program(fused, bind_scheme("bias-only:2", fused)), lr=0.01).step(x, 3)
    assert a.loss == b.loss
    for name, grad in a.grads.items():
        np.testing.assert_array_equal(b.grads[name], grad, err_msg=name)
