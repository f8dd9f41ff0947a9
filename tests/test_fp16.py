"""FP16 training (precision fp16 / mixed): the generated C (host build) equals the numpy
reference bit for bit, step after step; FP16 gradients against TensorFlow's FP32 GradientTape;
the memory plan counts half tensors at 2 bytes; bad requests are refused clearly."""
import json

import numpy as np
import pytest

import tinytrain
from tinytrain.errors import TinyTrainError, UnsupportedError
from tinytrain.ir import Op
from tinytrain.ops import f16, unit

from cli_run import tinytrain_in_process as _cli


def run_cli(args):
    return _cli(*args)
from graphs import GraphBuilder, MODELS, tf_forward

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"


def conv_net(seed=0):
    """Every op FP16 training has: conv2d (stride 2, 1x1), depthwise, max pool, flatten, dense."""
    b = GraphBuilder("f16net", (1, 9, 9, 3), seed)
    b.conv("conv1", 8, stride=2, act="relu6")
    b.conv("dw1", 0, depthwise=True, act="relu")
    b.conv("pw1", 6, k=1, pad=0, act="relu")
    b.pool("pool", "max")
    h = b.tensors[b.last]
    b.unary("flatten", "reshape", (1, h.size))
    b.dense("fc", 5)
    return b.build("f16net")


def mlp():
    return MODELS["mlp"]()


GRAPHS = {"conv": conv_net, "mlp": mlp}


def bits(a):
    return np.asarray(a, np.float16).view(np.uint16)


def run_both(compiled, xs, labels):
    """(simulator, host params, losses equal?) after training both on the same stream."""
    sim = compiled.simulator()
    with compiled.host_trainer() as ht:
        for x, y in zip(xs, labels):
            r = sim.step(x, int(y))
            loss, _ = ht.train_step(x, int(y))
            assert np.float32(loss) == np.float32(r.loss)
        return sim, ht.params()


def assert_half_params_equal(compiled, sim, params):
    """Every trained parameter of the host build is half and has the simulation's bits; some moved."""
    moved = 0
    for name, v in params.items():
        assert v.dtype == np.float16
        np.testing.assert_array_equal(bits(v), bits(sim.params[name]), err_msg=name)
        moved += int((bits(v) != bits(compiled.graph.tensors[name].data)).sum())
    assert moved > 0


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("precision,scale,momentum", [("fp16", 1.0, False), ("mixed", 256.0, True),
                                                      ("fp16", "dynamic", False)])
def test_host_build_equals_numpy_reference_bit_for_bit(graph, precision, scale, momentum):
    g = GRAPHS[graph]()
    if scale == "dynamic":        # large classifier weights: the scaled input gradient overflows half
        last = [t for t in g.constants() if t.name.endswith(".weight")][-1]
        last.data = last.data * 16
    m = tinytrain.compile(g, scheme="full", precision=precision, loss_scale=scale, momentum=momentum,
                          momentum_value=0.9 if momentum else 0.0, lr=0.05, passes=False)
    rng = np.random.default_rng(3)
    shape = g.tensors[g.inputs[0]].shape
    xs = rng.standard_normal((12,) + shape).astype(np.float32)
    labels = rng.integers(0, g.tensors[g.outputs[0]].size, 12)
    sim, params = run_both(m, xs, labels)
    assert_half_params_equal(m, sim, params)
    if scale == "dynamic":     # 2^16 overflows the half gradients at first: the scale came down
        assert sim.loss_scale_value < 2 ** 16


def test_digits_partial_scheme_bit_for_bit():
    """The float digits CNN from its .keras file, compiled to FP16 directly; a sparse scheme
    (saved channels of a partial update)."""
    spec = {"bias_update_last_n": 2, "weight_update": [{"conv_index": 2, "input_channel_ratio": 0.5}],
            "classifier": "full"}
    import tempfile, os
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        m = tinytrain.compile(str(DIGITS / "digits_cnn.keras"), scheme=f.name, precision="fp16", lr=0.05)
    finally:
        os.unlink(f.name)
    d = np.load(DIGITS / "digits_test.npz")
    sim, params = run_both(m, d["x"][:20], d["y"][:20])
    for name, v in params.items():
        np.testing.assert_array_equal(bits(v), bits(sim.params[name]), err_msg=name)


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_fp16_gradients_against_gradient_tape(graph):
    """The half-precision step's weight gradients against TensorFlow's FP32 gradients of the same
    (half-rounded) weights: within 2% of the largest gradient of each tensor."""
    tf = pytest.importorskip("tensorflow")
    g = GRAPHS[graph]()
    m = tinytrain.compile(g, scheme="full", precision="fp16", lr=0.0, passes=False)
    x = np.random.default_rng(5).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float16)
    half_weights = {t.name: m.graph.tensors[t.name].data.astype(np.float32) for t in g.constants()}
    variables = {n: tf.Variable(v) for n, v in half_weights.items()}
    with tf.GradientTape() as tape:
        logits = tf_forward(g, x.astype(np.float32), variables)
        tf.nn.sparse_softmax_cross_entropy_with_logits([1], logits)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits([1], logits)
    names = list(variables)
    tf_grads = dict(zip(names, [v.numpy() for v in tape.gradient(loss, [variables[n] for n in names])]))
    res = m.simulator().step(x.astype(np.float32), 1)
    assert res.loss == pytest.approx(float(loss[0]), rel=2e-3)
    for name in names:
        ref = tf_grads[name]
        tol = 0.02 * max(float(np.abs(ref).max()), 1e-3)
        np.testing.assert_allclose(res.grads[name], ref, atol=tol, err_msg=name)


def test_memory_counts_half_tensors_at_two_bytes():
    g = conv_net()
    fp32 = tinytrain.compile(g, scheme="full", passes=False).memory
    fp16 = tinytrain.compile(g, scheme="full", precision="fp16", passes=False).memory
    mixed = tinytrain.compile(g, scheme="full", precision="mixed", passes=False).memory
    params = sum(t.size for t in g.constants())
    assert fp32["trainable_weight_bytes"] == 4 * params
    assert fp16["trainable_weight_bytes"] == 2 * params
    assert mixed["trainable_param_bytes"] == 2 * params + 4 * params      # + the fp32 master copy
    assert fp16["breakdown"]["gradient"] * 2 <= fp32["breakdown"]["gradient"] + 64
    total = lambda m: m["arena_bytes"] + m["trainable_param_bytes"]
    assert total(fp16) <= 0.55 * total(fp32)
    assert fp16["precision"] == "fp16" and "storage format" in fp16["notes"][0]
    m4 = tinytrain.compile(g, scheme="full", precision="fp16", passes=False, board="mps2-an386")
    assert "computed in FP32" in m4.memory["notes"][0]


def test_inspect_json_reports_precision(tmp_path):
    out = run_cli(["inspect", str(DIGITS / "digits_cnn.keras"), "--train", "full", "--precision", "fp16",
                   "--json"])
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["memory"]["precision"] == "fp16"
    assert data["memory"]["trainable_weight_bytes"] == 2 * 2874


def test_refusals_name_what_is_wrong(monkeypatch):
    with pytest.raises(TinyTrainError, match="int8.*training scheme"):      # an FP16 head needs a scheme
        tinytrain.compile(str(DIGITS / "digits_cnn.tflite"), precision="fp16")
    g = MODELS["residual"]()
    add = next(op for op in g.ops if op.type == "add")
    # an op whose unit has no float16 form (every float op may have one: the flag is what
    # precision.to_float16 reads; tests/test_fp16_ops.py covers the rest)
    monkeypatch.setattr(type(unit("add")), "float16", False)
    with pytest.raises(UnsupportedError, match=f"{add.name}.*add in float16"):
        tinytrain.compile(g, scheme="full", precision="fp16")
    monkeypatch.undo()
    with pytest.raises(TinyTrainError, match="power of two"):
        tinytrain.compile(mlp(), scheme="full", precision="fp16", loss_scale=3.0)
    with pytest.raises(TinyTrainError, match="unknown precision"):
        tinytrain.compile(mlp(), scheme="full", precision="bf16")
    out = run_cli(["inspect", str(DIGITS / "digits_cnn.keras"), "--train", "full", "--precision", "fp16",
                   "--loss-scale", "lots"])
    assert out.returncode == 2 and "power of two" in out.stderr and "Traceback" not in out.stderr


def test_half_conversions_soft_equal_the_compilers(tmp_path):
    """tt_f16.h's integer conversions (cores without _Float16) equal gcc's _Float16 and numpy on
    every half and on floats around every rounding boundary."""
    import ctypes
    from ckernels import load_kernels
    src = tmp_path / "conv.c"
    src.write_text('#define TT_F16_SOFT\n#include "tt_f16.h"\n'
                   "void soft(const float *x, int n, tt_f16 *h, const tt_f16 *hi, float *f) {\n"
                   "  int i; for (i = 0; i < n; ++i) h[i] = tt_f2h(x[i]);\n"
                   "  for (i = 0; i < 65536; ++i) f[i] = tt_h2f(hi[i]); }\n")
    lib = load_kernels([src], pattern=None, build_dir=tmp_path)
    halves = np.arange(65536, dtype=np.uint16)
    hv = halves.view(np.float16).astype(np.float32)
    fin = hv[np.isfinite(hv)]
    mids = np.nextafter(fin, np.float32(np.inf))          # just above every half
    x = np.concatenate([fin, mids, np.nextafter(fin, np.float32(-np.inf)), (fin[:-1] + fin[1:]) / 2,
                        np.float32([65519.99, 65520.0, 1e-8, -1e-8, 2.0 ** -25, 3 * 2.0 ** -26, np.inf, -np.inf])]
                       ).astype(np.float32)
    h = np.zeros(x.size, np.uint16)
    f = np.zeros(65536, np.float32)
    P = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    lib.soft(P(x), ctypes.c_int(x.size), P(h), P(halves), P(f))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(h, x.astype(np.float16).view(np.uint16))
    nan = np.isnan(hv)
    np.testing.assert_array_equal(f[~nan].view(np.uint32), hv[~nan].view(np.uint32))
    assert np.isnan(f[nan]).all()


def test_fma16_models_one_rounding():
    a, b, c = np.float16(1 + 3 * 2 ** -10), np.float16(1 + 2 ** -10), np.float16(-1)
    # a*b = 1 + 2^-8 + 3 * 2^-20: fused, 2^-8 + 3 * 2^-20 rounds to 2^-8 + 2^-18; unfused, a*b
    # rounds to 1 + 2^-8 first and the 3 * 2^-20 is lost
    fused = f16.fma16(a, b, c)
    unfused = np.float16(np.float16(a * b) + c)
    assert float(fused) == 2 ** -8 + 2 ** -18 and float(unfused) == 2 ** -8
