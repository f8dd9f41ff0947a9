"""The static memory planner (tinytrain/planner.py), tested on its own."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinytrain.errors import TinyTrainError
from tinytrain.ir import Graph, Op, QuantParams, Tensor
from tinytrain.planner import (STRATEGIES, Buffer, Plan, check_plan, graph_buffers, lower_bound,
                               naive_bytes, plan, plan_graph)

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "tte-models"
SINGLE = [s for s in STRATEGIES if s != "best"]


def round16(x):
    return -(-x // 16) * 16


# --- an independent soundness check (does not reuse the planner's code) -------------------

def assert_sound(buffers, p, aliases=None):
    """Brute force: every pair of buffers that are not views of one another and are live
    together (alias groups live over the union of their lifetimes) is disjoint in memory,
    unless one is written in place of the other: same offset, lifetimes touching at one step."""
    aliases = aliases or {}
    by_name = {b.name: b for b in buffers}

    def in_place(a, b):
        src = by_name.get(b.inplace_of)
        return src is a and a.last == b.first and p.offsets[a.name] == p.offsets[b.name]

    def root(name):
        while name in aliases:
            name = aliases[name]
        return name

    span = {}
    for b in buffers:
        lo, hi = span.get(root(b.name), (b.first, b.last))
        span[root(b.name)] = (min(lo, b.first), max(hi, b.last))
    for b in buffers:
        off = p.offsets[b.name]
        assert off % b.align == 0 and 0 <= off and off + b.size <= p.arena_bytes
        assert off == p.offsets[root(b.name)]
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            ra, rb = root(a.name), root(b.name)
            if ra == rb or a.size == 0 or b.size == 0:
                continue
            (fa, la), (fb, lb) = span[ra], span[rb]
            if fa <= lb and fb <= la and not (in_place(a, b) or in_place(b, a)):
                oa, ob = p.offsets[a.name], p.offsets[b.name]
                assert oa + a.size <= ob or ob + b.size <= oa, (a, b, oa, ob)


def random_buffers(rng, n, steps, max_size=5000):
    buffers = []
    for i in range(n):
        first = int(rng.integers(0, steps))
        last = int(rng.integers(first, steps)) if rng.random() < 0.4 else min(steps - 1, first + int(rng.integers(0, 3)))
        size = 0 if rng.random() < 0.05 else int(rng.integers(1, max_size))
        align = int(rng.choice([1, 4, 8, 16]))
        buffers.append(Buffer(f"t{i}", size, first, last, align))
    return buffers


def random_aliases(rng, buffers):
    """A few views: each aliases an earlier buffer, so there are no cycles (chains allowed)."""
    aliases = {}
    for i in range(1, len(buffers)):
        if rng.random() < 0.15:
            aliases[buffers[i].name] = buffers[int(rng.integers(0, i))].name
    return aliases


# --- hand-made cases with known optimal answers ---------------------------------------

def chain_buffers(size=64):
    # x -> a -> b -> c: op k reads the k-th and writes the next; c is the output.
    return [Buffer("x", size, 0, 0), Buffer("a", size, 0, 1), Buffer("b", size, 1, 2),
            Buffer("c", size, 2, 3)]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_chain_of_equal_buffers_needs_two_slots(strategy):
    buffers = chain_buffers()
    p = plan(buffers, strategy)
    check_plan(buffers, p)
    assert_sound(buffers, p)
    assert p.arena_bytes == 128 == lower_bound(buffers)
    assert naive_bytes(buffers) == 256
    assert p.offsets["a"] != p.offsets["b"] and p.offsets["b"] != p.offsets["c"]


def test_disjoint_lifetimes_share_one_slot():
    buffers = [Buffer(f"t{i}", 100 + i, i, i) for i in range(6)]
    p = plan(buffers)
    assert set(p.offsets.values()) == {0}
    assert p.arena_bytes == round16(105)


def test_all_live_together_need_their_sum_with_alignment():
    buffers = [Buffer("a", 5, 0, 2, align=8), Buffer("b", 3, 0, 2, align=8), Buffer("c", 16, 0, 2, align=16)]
    for strategy in STRATEGIES:
        p = plan(buffers, strategy)
        check_plan(buffers, p)
        assert_sound(buffers, p)
        # c at 0, then a and b each on an 8-byte boundary: 16 + 8 + 3 = 27 -> 32
        assert p.arena_bytes == 32, strategy


def test_best_beats_tflm_greedy_by_size_where_it_is_suboptimal():
    # Greedy by size places d (64) at 0 and b above it, leaving a hole a and c cannot use.
    buffers = [Buffer("a", 48, 2, 2), Buffer("b", 48, 0, 2), Buffer("c", 48, 2, 2), Buffer("d", 64, 0, 0)]
    greedy = plan(buffers, "greedy_by_size")
    best = plan(buffers, "best")
    assert greedy.arena_bytes == 160
    assert best.arena_bytes == 144 == lower_bound(buffers)
    assert best.algorithm != "greedy_by_size"
    assert best.tried["greedy_by_size"] == 160
    check_plan(buffers, best)
    assert_sound(buffers, best)


def test_search_finds_the_optimum_the_greedy_orders_miss():
    # Every greedy order needs 112 bytes; parking the long-lived f at the top fits 96.
    buffers = [Buffer("a", 48, 0, 0), Buffer("b", 64, 1, 2), Buffer("c", 64, 4, 4),
               Buffer("d", 32, 3, 3), Buffer("e", 32, 3, 4), Buffer("f", 16, 0, 3)]
    assert min(plan(buffers, s).arena_bytes for s in SINGLE) == 112
    best = plan(buffers)
    assert best.algorithm == "search"
    assert best.arena_bytes == 96 == lower_bound(buffers)
    check_plan(buffers, best)
    assert_sound(buffers, best)


def test_best_equals_greedy_by_size_on_a_tie():
    buffers = chain_buffers()
    assert plan(buffers).algorithm == "greedy_by_size"
    assert plan(buffers).offsets == plan(buffers, "greedy_by_size").offsets


def test_equal_sizes_reach_the_lower_bound():
    # Equal sizes make this interval-graph colouring: placing by first use is optimal.
    rng = np.random.default_rng(7)
    for _ in range(100):
        buffers = [Buffer(b.name, 32, b.first, b.last) for b in random_buffers(rng, 25, 12)]
        bound = lower_bound(buffers)
        assert plan(buffers, "greedy_by_first_use").arena_bytes == bound
        assert plan(buffers).arena_bytes == bound


# --- random buffer sets -----------------------------------------------------------------

def test_random_plans_are_sound_and_best_is_the_smallest():
    rng = np.random.default_rng(2024)
    for case in range(300):
        buffers = random_buffers(rng, int(rng.integers(1, 30)), int(rng.integers(1, 15)))
        aliases = random_aliases(rng, buffers) if case % 2 else {}
        bound = lower_bound(buffers, aliases)
        arenas = {}
        for strategy in SINGLE:
            p = plan(buffers, strategy, aliases=aliases)
            check_plan(buffers, p)
            assert_sound(buffers, p, aliases)
            assert p.algorithm == strategy
            assert p.arena_bytes >= bound and p.arena_bytes % 16 == 0
            assert p.arena_bytes <= round16(naive_bytes(buffers, aliases) + 16 * len(buffers))
            arenas[strategy] = p.arena_bytes
        if case % 3:
            continue      # "best" also searches, which is slower: check it on a third of the cases
        best = plan(buffers, aliases=aliases)
        check_plan(buffers, best)
        assert_sound(buffers, best, aliases)
        assert best.arena_bytes >= bound
        assert best.arena_bytes <= arenas["greedy_by_size"]
        assert {k: v for k, v in best.tried.items() if k != "search"} == arenas
        if best.algorithm == "search":
            assert best.tried["search"] == best.arena_bytes < min(arenas.values())
        else:
            assert best.arena_bytes == min(arenas.values()) == arenas[best.algorithm]


def test_training_sized_buffer_set_is_sound():
    # ~600 buffers: the size of the training graphs. Timing lives in the benchmark, not here.
    rng = np.random.default_rng(3)
    buffers = random_buffers(rng, 600, 300, max_size=20000)
    p = plan(buffers)
    check_plan(buffers, p)
    assert p.arena_bytes >= lower_bound(buffers)
    assert p.arena_bytes < naive_bytes(buffers) / 3


def test_plans_are_deterministic():
    rng = np.random.default_rng(11)
    buffers = random_buffers(rng, 40, 10)
    assert plan(buffers).offsets == plan(list(buffers)).offsets


# --- aliases ---------------------------------------------------------------------------

def test_alias_shares_offset_and_extends_lifetime():
    # v is a reshape view of a, read until step 4; c (live 2..3) must not reuse a's bytes
    # even though a itself is last read at step 1.
    buffers = [Buffer("a", 64, 0, 1), Buffer("v", 64, 1, 4), Buffer("c", 64, 2, 3)]
    p = plan(buffers, aliases={"v": "a"})
    check_plan(buffers, p)
    assert_sound(buffers, p, {"v": "a"})
    assert p.offsets["v"] == p.offsets["a"]
    assert abs(p.offsets["c"] - p.offsets["a"]) >= 64
    assert p.arena_bytes == 128
    assert naive_bytes(buffers, {"v": "a"}) == 128
    rows = {r["name"]: r for r in p.table()}
    assert rows["v"]["alias_of"] == "a" and rows["a"]["alias_of"] is None
    assert rows["c"] == dict(name="c", size=64, first=2, last=3, offset=p.offsets["c"], alias_of=None)


def test_alias_chain_resolves_to_one_offset():
    buffers = [Buffer("a", 32, 0, 0), Buffer("b", 32, 0, 1), Buffer("c", 32, 1, 2), Buffer("d", 32, 0, 2)]
    aliases = {"c": "b", "b": "a"}
    p = plan(buffers, aliases=aliases)
    assert p.offsets["a"] == p.offsets["b"] == p.offsets["c"] != p.offsets["d"]
    check_plan(buffers, p)


def test_check_plan_rejects_views_at_different_offsets():
    buffers = [Buffer("a", 64, 0, 1), Buffer("v", 64, 1, 2)]
    p = plan(buffers, aliases={"v": "a"})
    bad = Plan({"a": 0, "v": 64}, 128, "hand", buffers, {"v": "a"})
    check_plan(buffers, p)
    with pytest.raises(AssertionError, match="alias"):
        check_plan(buffers, bad)


@pytest.mark.parametrize("aliases, message", [
    ({"v": "nope"}, "unknown buffer 'nope'"),
    ({"nope": "a"}, "unknown buffer 'nope'"),
    ({"a": "v", "v": "a"}, "cycle"),
])
def test_bad_aliases_are_reported(aliases, message):
    with pytest.raises(TinyTrainError, match=message):
        plan([Buffer("a", 8, 0, 0), Buffer("v", 8, 0, 1)], aliases=aliases)


# --- in-place hint ------------------------------------------------------------------------

def inplace_chain():
    return [Buffer("x", 64, 0, 0), Buffer("a", 64, 0, 1, inplace_of="x"),
            Buffer("b", 64, 1, 2, inplace_of="a"), Buffer("c", 64, 2, 3, inplace_of="b")]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_inplace_chain_fits_in_one_slot(strategy):
    buffers = inplace_chain()
    p = plan(buffers, strategy)
    check_plan(buffers, p)
    assert set(p.offsets.values()) == {0}
    assert p.arena_bytes == 64 == lower_bound(buffers)


def test_check_plan_rejects_sharing_without_the_hint():
    hinted = inplace_chain()
    p = plan(hinted)
    plain = [Buffer(b.name, b.size, b.first, b.last) for b in hinted]
    with pytest.raises(AssertionError, match="overlap"):
        check_plan(plain, Plan(p.offsets, p.arena_bytes, "hand", plain))


def test_inplace_hint_is_ignored_when_lifetimes_do_more_than_touch():
    # x is still read at step 2, after a is written at step 1: a cannot overwrite it.
    buffers = [Buffer("x", 64, 0, 2), Buffer("a", 64, 1, 2, inplace_of="x")]
    p = plan(buffers)
    check_plan(buffers, p)
    assert p.offsets["x"] != p.offsets["a"]
    assert p.arena_bytes == 128 == lower_bound(buffers)


def test_inplace_output_larger_than_its_input_keeps_clear_of_others():
    # b grows past a's end; d, live with both, must sit clear of b's whole range.
    buffers = [Buffer("a", 32, 0, 1), Buffer("b", 96, 1, 2, inplace_of="a"), Buffer("d", 32, 0, 2)]
    p = plan(buffers)
    check_plan(buffers, p)
    assert_sound(buffers, p)
    assert p.offsets["b"] == p.offsets["a"]
    assert p.arena_bytes >= lower_bound(buffers) == 128


def test_random_inplace_hints_stay_sound():
    rng = np.random.default_rng(5)
    shared = 0
    for _ in range(100):
        buffers = random_buffers(rng, int(rng.integers(2, 25)), int(rng.integers(2, 10)))
        hinted = []
        for b in buffers:
            # Hint a buffer that is last read where b is written (and sometimes one that is not).
            sources = [s.name for s in buffers if s.name != b.name and
                       (s.last == b.first or rng.random() < 0.05)]
            src = str(rng.choice(sources)) if sources and rng.random() < 0.5 else None
            hinted.append(Buffer(b.name, b.size, b.first, b.last, b.align, inplace_of=src))
        for strategy in STRATEGIES:
            p = plan(hinted, strategy)
            check_plan(hinted, p)
            assert_sound(hinted, p)
            assert p.arena_bytes >= lower_bound(hinted)
            shared += sum(b.inplace_of is not None and p.offsets[b.name] == p.offsets[b.inplace_of]
                          and b.size > 0 for b in hinted)
    assert shared > 100     # the hints were actually taken, not just tolerated


# --- user errors and the checker itself -----------------------------------------------------

@pytest.mark.parametrize("buffers, message", [
    ([Buffer("a", -1, 0, 0)], "'a': negative size"),
    ([Buffer("a", 8, 3, 2)], "'a': bad lifetime"),
    ([Buffer("a", 8, 0, 0, align=0)], "'a': bad alignment"),
    ([Buffer("a", 8, 0, 0), Buffer("a", 8, 1, 1)], "'a' given twice"),
    ([Buffer("a", 8, 0, 0, inplace_of="zz")], "unknown buffer 'zz'"),
])
def test_bad_buffers_are_reported(buffers, message):
    with pytest.raises(TinyTrainError, match=message):
        plan(buffers)


def test_unknown_strategy_is_reported():
    with pytest.raises(TinyTrainError, match="unknown strategy 'fastest'"):
        plan(chain_buffers(), "fastest")


def test_check_plan_catches_bad_plans():
    buffers = chain_buffers()
    with pytest.raises(AssertionError, match="overlap"):
        check_plan(buffers, Plan({"x": 0, "a": 32, "b": 96, "c": 0}, 160, "hand", buffers))
    with pytest.raises(AssertionError, match="not aligned"):
        check_plan(buffers, Plan({"x": 0, "a": 68, "b": 0, "c": 68}, 144, "hand", buffers))
    with pytest.raises(AssertionError, match="past the arena"):
        check_plan(buffers, Plan({"x": 0, "a": 64, "b": 0, "c": 64}, 112, "hand", buffers))
    with pytest.raises(AssertionError, match="no offset"):
        check_plan(buffers, Plan({"x": 0, "a": 64, "b": 0}, 128, "hand", buffers))


def test_empty_plan():
    p = plan([])
    assert p.arena_bytes == 0 and p.offsets == {} and lower_bound([]) == 0


# --- graphs ---------------------------------------------------------------------------------

def tensor(name, shape, dtype="int8", const=False):
    """A tensor of a test graph; int8 activations quantized per tensor, as every importer gives them."""
    data = np.zeros(shape, dtype=np.int8 if dtype == "int8" else np.int32) if const else None
    quant = QuantParams(0.05, 0) if dtype == "int8" and not const else None
    return Tensor(name, shape, dtype, quant, data=data)


def residual_graph():
    """x -> conv -> y -> relu -> z -> add(z, y) -> s -> reshape -> r -> fc -> out."""
    ts = [tensor("x", (1, 4, 4, 3)), tensor("w", (8, 1, 1, 3), const=True), tensor("bias", (8,), "int32", True),
          tensor("y", (1, 4, 4, 8)), tensor("z", (1, 4, 4, 8)), tensor("s", (1, 4, 4, 8)),
          tensor("r", (1, 128)), tensor("fw", (10, 128), const=True), tensor("fb", (10,), "int32", True),
          tensor("out", (1, 10))]
    ops = [Op("conv", "conv2d", ["x", "w", "bias"], ["y"]),
           Op("relu", "relu", ["y"], ["z"]),
           Op("add", "add", ["z", "y"], ["s"]),
           Op("flat", "reshape", ["s"], ["r"]),
           Op("fc", "fully_connected", ["r", "fw", "fb"], ["out"])]
    return Graph("residual", {t.name: t for t in ts}, ops, ["x"], ["out"]).validate()


def test_graph_buffers_lifetimes_sizes_and_aliases():
    buffers, aliases = graph_buffers(residual_graph())
    got = {b.name: (b.size, b.first, b.last) for b in buffers}
    assert got == {"x": (48, 0, 0), "y": (128, 0, 2), "z": (128, 1, 2), "s": (128, 2, 3),
                   "r": (128, 3, 4), "out": (10, 4, 4)}
    assert aliases == {"r": "s"}


def test_plan_graph_is_sound():
    graph = residual_graph()
    buffers, aliases = graph_buffers(graph)
    p = plan_graph(graph)
    check_plan(buffers, p)
    assert_sound(buffers, p, aliases)
    assert p.offsets["r"] == p.offsets["s"]
    # Peak: y, z and s all live at step 2.
    assert p.arena_bytes == 384 == lower_bound(buffers, aliases)


def test_graph_chain_needs_two_slots_and_outputs_live_to_the_end():
    ts = {n: tensor(n, (1, 2, 2, 4)) for n in ("x", "a", "b", "c")}
    ops = [Op("r0", "relu", ["x"], ["a"]), Op("r1", "relu", ["a"], ["b"]), Op("r2", "relu", ["b"], ["c"])]
    graph = Graph("chain", ts, ops, ["x"], ["a", "c"]).validate()
    buffers, _ = graph_buffers(graph)
    got = {b.name: (b.first, b.last) for b in buffers}
    assert got == {"x": (0, 0), "a": (0, 2), "b": (1, 2), "c": (2, 2)}   # a is an output: live to the end
    graph.outputs = ["c"]
    buffers, _ = graph_buffers(graph)
    assert {b.name: (b.first, b.last) for b in buffers}["a"] == (0, 1)
    assert plan_graph(graph).arena_bytes == 32


def test_unconsumed_tensor_lives_one_step():
    ts = {n: tensor(n, (1, 2, 2, 4)) for n in ("x", "a", "b")}
    ops = [Op("r0", "relu", ["x"], ["a"]), Op("r1", "relu", ["x"], ["b"])]
    buffers, _ = graph_buffers(Graph("dead", ts, ops, ["x"], ["b"]).validate())
    assert {b.name: (b.first, b.last) for b in buffers}["a"] == (0, 0)


# --- the paper's models (reference data) ---------------------------------------------------

def reference_inference_buffers(model):
    """Forward buffers of a reference model (int8, HWC): one per layer output."""
    spec = json.loads((REFERENCE / f"{model}.json").read_text())
    _, c, h, w = spec["input"]["shape"]
    size = {"input": c * h * w}
    buffers, first, last = [], {"input": 0}, {}
    for step, layer in enumerate(spec["layers"]):
        inputs = layer["input"] if isinstance(layer["input"], list) else [layer["input"]]
        for name in inputs:
            last[name] = step
        first[layer["name"]] = step
        if layer["op"] in ("conv2d", "depthwise_conv2d"):
            size[layer["name"]] = layer["out_channels"] * layer["out_hw"] ** 2
        elif layer["op"] == "fully_connected":
            size[layer["name"]] = layer["out_features"]
        else:   # add keeps its inputs' size; global pooling keeps the channels
            src = size[inputs[0]]
            size[layer["name"]] = src if layer["op"] == "add" else spec["layers"][step - 1]["out_channels"]
    last[spec["layers"][-1]["name"]] = len(spec["layers"]) - 1
    for name, nbytes in size.items():
        buffers.append(Buffer(name, nbytes, first[name], last.get(name, first[name])))
    return buffers


@pytest.mark.parametrize("model", ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"])
def test_reference_models_plan_at_the_lower_bound(model):
    if not (REFERENCE / f"{model}.json").exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    buffers = reference_inference_buffers(model)
    p = plan(buffers)
    check_plan(buffers, p)
    assert_sound(buffers, p)
    assert p.arena_bytes == round16(lower_bound(buffers))
    assert p.arena_bytes * 4 < naive_bytes(buffers)
