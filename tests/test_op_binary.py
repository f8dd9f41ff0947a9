"""The binary elementwise ops (tinytrain/ops/: add, sub, mul, maximum, minimum, prelu) in int8:
bit-exact with LiteRT's reference kernels on every branch (equal shapes: the flat loop;
different shapes: the BroadcastXxx6DSlow / BroadcastPrelu4DSlow index walk), numpy reference
and C kernel, on hand-built one-op .tflite files with exact scales: constant operands (a
scalar, a per-channel vector), squeeze-excite shapes, both operands broadcast, fused
activations, multipliers below and above 1. Every int8 pair is covered on the flat branch.
What LiteRT cannot run (ADD/SUB output multipliers >= 1, MAXIMUM of differently quantized
operands) is refused by name."""
import ctypes

import numpy as np
import pytest

from tinytrain import refops
from tinytrain.errors import UnsupportedError
from tinytrain.frontends.tflite import load_tflite
from tinytrain.ops import unit

import ckernels as ck
import tflite_models as tm

RNG = np.random.default_rng(9)
ALL_PAIRS = (np.tile(np.arange(-128, 128), 256).reshape(1, 256, 256, 1).astype(np.int8),
             np.repeat(np.arange(-128, 128), 256).reshape(1, 256, 256, 1).astype(np.int8))
PARAMS = {"add": "tt_add_params", "sub": "tt_add_params", "mul": "tt_mul_params", "prelu": "tt_prelu_params"}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    extra = [p for name in ("sub", "mul", "maximum", "prelu") for p in ck.kernel_sources(f"{name}_s8.c")]
    return ck.load_kernels(extra, pattern="add_s8.c", build_dir=tmp_path_factory.mktemp("ck_binary"))


def c_binary(lib, g, op, values: dict) -> np.ndarray:
    """The op's C kernel (flat or tt_bcast, as the unit emits it) on the given operand values."""
    u = unit(op.type)
    y = g.tensors[op.outputs[0]]
    a, b = (ck.carray(values[t] if t in values else g.tensors[t].data, np.int8).reshape(-1) for t in op.inputs)
    out = np.zeros(y.size, np.int8)
    params = [ck.struct(PARAMS[op.type], u.params(g, op))] if op.type in PARAMS else []
    if u.broadcasts(g, op):
        from tinytrain.ops.elementwise import bcast_fields
        bc = ck.struct("tt_bcast", bcast_fields(g.tensors[op.inputs[0]].shape, g.tensors[op.inputs[1]].shape, y.shape))
        getattr(lib, f"tt_{op.type}_bcast_s8")(ck.ptr(a), ck.ptr(b), bc, *params, ck.ptr(out))
    else:
        getattr(lib, f"tt_{op.type}_s8")(ck.ptr(a), ck.ptr(b), y.size, *params, ck.ptr(out))
    return out.reshape(y.shape)


def random_s8(shape):
    x = RNG.integers(-128, 128, shape).astype(np.int8)
    flat = x.reshape(-1)
    flat[:2] = [-128, 127][: flat.size]
    return x


def check(lib, op, operands, out_shape, out_q, options=None, inputs=None):
    """LiteRT's reference kernel == the numpy reference (the imported graph) == the C kernel."""
    data = tm.op_tflite(op, operands, dict(shape=out_shape, q=out_q), options)
    g = load_tflite(data)
    (ir_op,) = g.ops
    if inputs is None:
        inputs = [random_s8(d["shape"]) for d in operands if d.get("data") is None]
    want = tm.invoke(tm.reference_interpreter(data), inputs)
    values = dict(zip(g.inputs, inputs))
    np.testing.assert_array_equal(refops.run_graph(g, values)[g.outputs[0]], want)
    np.testing.assert_array_equal(c_binary(lib, g, ir_op, values), want)
    return g, ir_op, want


def q(scale, zp, shape=(1, 256, 256, 1), data=None):
    return dict(shape=shape, q=(scale, zp), data=data)


# (scales/zero points of a, b, y; fused activation code: 0 none, 1 relu, 3 relu6)
ADD_SUB_QUANT = [
    ((0.05, 3), (0.03, -7), (0.07, 1), 0),       # a's scale the larger
    ((0.01, -128), (0.2, 127), (0.15, -20), 0),  # b's scale the larger, zero points at both ends
    ((0.1, 0), (0.1, 0), (0.05, -128), 1),       # equal scales, relu
    ((0.003, 10), (0.4, -50), (0.3, 5), 3),      # relu6
    ((0.5, 5), (0.02, -3), (0.0005, 0), 0),      # saturating output
    ((1.0, 0), (1.0, 0), (2.0 / (1 << 20) * 1.001, 0), 0),   # output multiplier just below 1
]


@pytest.mark.parametrize("op", ["ADD", "SUB"])
@pytest.mark.parametrize("k", range(len(ADD_SUB_QUANT)))
def test_add_sub_every_pair_equal_shapes(lib, op, k):
    qa, qb, qy, act = ADD_SUB_QUANT[k]
    check(lib, op, [q(*qa), q(*qb)], (1, 256, 256, 1), qy, {"fusedActivationFunction": act}, list(ALL_PAIRS))


def test_the_add_sub_cases_reach_their_branches():
    from tinytrain import quant
    from tinytrain.ir import Graph, Op, QuantParams, Tensor
    seen = set()
    for qa, qb, qy, act in ADD_SUB_QUANT:
        t = {n: Tensor(n, (1, 4), "int8", QuantParams.per_tensor(*v)) for n, v in zip("aby", (qa, qb, qy))}
        op = Op("add", "add", ["a", "b"], ["y"], {"activation": {0: "none", 1: "relu", 3: "relu6"}[act]})
        p = quant.add_params(Graph("g", t, [op], ["a", "b"], ["y"]), op)
        seen.add("a larger" if qa[0] > qb[0] else "b larger" if qb[0] > qa[0] else "equal")
        seen.add(f"act {act}")
        if p["out_shift"] == 0:
            seen.add("output multiplier near 1")
    assert {"a larger", "b larger", "equal", "act 0", "act 1", "act 3", "output multiplier near 1"} <= seen


# Broadcast shapes: (a, b) -> out; None marks a constant operand (its values random)
BROADCASTS = [
    ((1, 5, 6, 8), (1, 1, 1, 8)),        # squeeze-excite: a per-channel activation
    ((1, 5, 6, 8), (8,)),                # a standalone batch norm's per-channel constant
    ((1, 5, 6, 8), ()),                  # Rescaling's scalar constant
    ((1, 5, 6, 1), (1, 5, 6, 8)),        # one channel against eight
    ((1, 1, 6, 8), (1, 5, 1, 8)),        # both operands broadcast
    ((1, 12), (12,)),                    # a vector (1, F)
    ((), (1, 4, 4, 3)),                  # a constant first operand
]


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM"])
def test_broadcast_branch_on_several_shapes(lib, op):
    from tinytrain.ops.elementwise import broadcast_shape
    for k, (sa, sb) in enumerate(BROADCASTS):
        out = broadcast_shape(sa, sb)
        same = op in ("MAXIMUM", "MINIMUM")
        qa = (0.05, 3) if same else (0.04 + 0.01 * k, 3 - k)
        qb = (0.05, 3) if same else (0.03, -7 + 2 * k)
        qy = (0.05, 3) if same else ((0.002, 1) if op == "MUL" else (0.07, 1))
        # operands of rank < 4 that a model would not feed as inputs are constants
        const_a, const_b = len(sa) < 2, len(sb) < 2 or (len(sb) == 1 and len(sa) > 1)
        ops_ = [dict(shape=sa, q=qa, data=random_s8(sa) if const_a else None),
                dict(shape=sb, q=qb, data=random_s8(sb) if const_b else None)]
        g, ir_op, _ = check(lib, op, ops_, out, qy, {"fusedActivationFunction": k % 2} if not same else None)
        # LiteRT's ProcessBroadcastShapes: (1, 12) and (12,) extend to equal shapes, the flat branch
        sizes = {g.tensors[t].size for t in (*ir_op.inputs, *ir_op.outputs)}
        assert unit(ir_op.type).broadcasts(g, ir_op) == (len(sizes) > 1), (op, sa, sb)
        assert [g.tensors[t].is_const for t in ir_op.inputs] == [const_a, const_b]


MUL_QUANT = [
    ((0.05, 3), (0.03, -7), (0.0017, 1), 0),     # multiplier < 1
    ((0.5, -128), (0.4, 127), (0.01, 0), 0),     # multiplier > 1: a left shift, saturation
    ((0.01, 0), (0.02, 0), (0.0001, -128), 1),   # relu
    ((0.2, 10), (0.3, -20), (0.05, 5), 3),       # relu6
    ((0.0039, -128), (0.0078, 0), (0.0039, -128), 0),   # logistic-like operands (SE gates)
]


@pytest.mark.parametrize("k", range(len(MUL_QUANT)))
def test_mul_every_pair_equal_shapes(lib, k):
    qa, qb, qy, act = MUL_QUANT[k]
    g, ir_op, _ = check(lib, "MUL", [q(*qa), q(*qb)], (1, 256, 256, 1), qy, {"fusedActivationFunction": act},
                        list(ALL_PAIRS))
    assert not unit("mul").broadcasts(g, ir_op)


def test_mul_cases_cover_both_multiplier_signs():
    from tinytrain.ops.mul import mul_params
    shifts = [mul_params(a[0], a[1], b[0], b[1], y[0], y[1])["out_shift"] for a, b, y, _ in MUL_QUANT]
    assert min(shifts) < 0 < max(shifts)


def test_mul_multiplier_is_computed_in_float32(lib):
    """s_a * s_b / s_y in float32 (MUL's Prepare), not in double: scales chosen so that the two
    round to different Q31 multipliers."""
    from tinytrain import quant
    from tinytrain.ops.mul import mul_params
    found = None
    for sa in np.linspace(0.01, 0.02, 2000, dtype=np.float32):
        sa, sb, sy = float(sa), 0.0123, 0.0071
        exact = quant.quantize_multiplier(float(np.float32(sa)) * float(np.float32(sb)) / float(np.float32(sy)))
        if exact[0] != mul_params(sa, 0, sb, 0, sy, 0)["out_mult"]:
            found = sa
            break
    assert found is not None
    check(lib, "MUL", [q(found, 0), q(0.0123, 0)], (1, 256, 256, 1), (0.0071, 0), None, list(ALL_PAIRS))


@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
def test_maximum_minimum_every_pair(lib, op):
    check(lib, op, [q(0.05, 3), q(0.05, 3)], (1, 256, 256, 1), (0.05, 3), None, list(ALL_PAIRS))


PRELU_CASES = [  # x quant, alpha quant, y quant, alpha shape
    ((0.05, 3), (0.01, 2), (0.04, -5), (1, 1, 8)),     # one alpha per channel (shared_axes=[1, 2])
    ((0.02, -128), (0.004, 0), (0.01, -128), (1, 1, 8)),
    ((0.1, 0), (0.02, -30), (0.03, 10), (5, 6, 8)),     # one alpha per element: the flat branch
    ((0.5, 20), (0.5, 0), (0.01, 0), (1, 1, 1)),        # one alpha for all, multipliers > 1
]


@pytest.mark.parametrize("k", range(len(PRELU_CASES)))
def test_prelu(lib, k):
    qx, qa, qy, ashape = PRELU_CASES[k]
    alpha = random_s8(ashape)
    g, ir_op, _ = check(lib, "PRELU", [dict(shape=(1, 5, 6, 8), q=qx), dict(shape=ashape, q=qa, data=alpha)],
                        (1, 5, 6, 8), qy)
    assert unit("prelu").broadcasts(g, ir_op) == (ashape != (5, 6, 8))
    x = np.arange(-128, 128).reshape(1, 4, 8, 8).astype(np.int8)      # every input value
    check(lib, "PRELU", [dict(shape=(1, 4, 8, 8), q=qx), dict(shape=(1, 1, 8), q=qa, data=random_s8((1, 1, 8)))],
          (1, 4, 8, 8), qy, inputs=[x])


def test_what_litert_cannot_run_is_refused():
    tiny = 2.0 / (1 << 20) * 0.99         # an ADD/SUB output multiplier >= 1
    for op in ("ADD", "SUB"):
        data = tm.op_tflite(op, [q(1.0, 0, (1, 4)), q(1.0, 0, (1, 4))], dict(shape=(1, 4), q=(tiny, 0)))
        with pytest.raises(UnsupportedError, match=r"output multiplier >= 1"):
            load_tflite(data)
    data = tm.op_tflite("MAXIMUM", [q(0.05, 3, (1, 4)), q(0.06, 3, (1, 4))], dict(shape=(1, 4), q=(0.05, 3)))
    with pytest.raises(UnsupportedError, match="quantized differently"):
        load_tflite(data)
