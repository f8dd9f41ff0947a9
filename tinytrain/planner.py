"""Static memory planner: tensor lifetimes -> offsets in one arena.

In the style of TFLite Micro's GreedyMemoryPlanner: every buffer is live over an
inclusive range of steps [first, last]; buffers whose lifetimes overlap must not
overlap in memory. Buffers are placed one by one, each at the lowest offset (or the
tightest gap) that fits beside the already-placed buffers it is live with; the
strategies differ only in the order they place buffers and in first-fit vs best-fit.
"best" runs them all, then a bounded backtracking search for a smaller arena (between
the lower bound and the best greedy result), and keeps the smallest: Plan.algorithm is
then the winning strategy's name, or "search". Plans are deterministic.

Two ways to share memory on purpose:
  aliases     {"b": "a"}: b is a view of a (a reshape). They become one buffer whose
              lifetime is the union of theirs, at one offset.
  inplace_of  Buffer(b, inplace_of="a"): the kernel writing b consumes a as it goes,
              so b may start exactly at a's offset. The hint only applies when b is
              written at the very step a is last read (a.last == b.first); otherwise
              it is ignored and the two are planned apart like any other pair.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import TinyTrainError

ARENA_ROUND = 16      # the arena size is rounded up to this many bytes

# name -> (order, fit). The first one is TFLite Micro's planner; "best" breaks ties
# in this order, so on a tie it returns exactly what greedy_by_size does.
_STRATEGIES = {
    "greedy_by_size": ("size", "first_fit"),
    "greedy_by_size_best_fit": ("size", "best_fit"),
    "greedy_by_breadth": ("breadth", "first_fit"),
    "greedy_by_lifetime": ("lifetime", "first_fit"),
    "greedy_by_area": ("area", "best_fit"),
    "greedy_by_first_use": ("first_use", "best_fit"),
}
STRATEGIES = tuple(_STRATEGIES) + ("best",)


@dataclass
class Buffer:
    name: str
    size: int                   # bytes
    first: int                  # index of the first step it is live (written)
    last: int                   # index of the last step it is read (inclusive)
    align: int = 8              # alignment of the offset in bytes
    inplace_of: str | None = None   # may start at this buffer's offset (see module doc)


@dataclass
class Plan:
    offsets: dict[str, int]
    arena_bytes: int                 # peak = max(offset + size), rounded up to 16
    algorithm: str                   # which strategy produced it
    buffers: list[Buffer] = field(default_factory=list, repr=False)
    aliases: dict[str, str] = field(default_factory=dict, repr=False)
    tried: dict[str, int] = field(default_factory=dict, repr=False)   # strategy -> arena

    def table(self) -> list[dict]:
        """One row per buffer, in the order given to plan()."""
        roots = _alias_roots([b.name for b in self.buffers], self.aliases)
        return [dict(name=b.name, size=b.size, first=b.first, last=b.last,
                     offset=self.offsets[b.name],
                     alias_of=None if roots[b.name] == b.name else roots[b.name])
                for b in self.buffers]


# --- public API ----------------------------------------------------------------------

def plan(buffers: list[Buffer], strategy: str = "best",
         aliases: dict[str, str] | None = None) -> Plan:
    """Give every buffer an offset in one arena; see the module docstring."""
    if strategy not in STRATEGIES:
        raise TinyTrainError(f"memory planner: unknown strategy {strategy!r} "
                             f"(one of {', '.join(STRATEGIES)})")
    aliases = dict(aliases or {})
    groups = _Groups(buffers, aliases)
    names = list(_STRATEGIES) if strategy == "best" else [strategy]
    tried: dict[str, int] = {}
    best_name, best_offsets, best_arena = None, None, None
    for name in names:
        order, fit = _STRATEGIES[name]
        offsets = _place(groups, _ORDERS[order](groups), fit)
        arena = _arena(groups, offsets)
        tried[name] = arena
        if best_arena is None or arena < best_arena:
            best_name, best_offsets, best_arena = name, offsets, arena
    if strategy == "best":
        found = _search_below(groups, best_arena)
        if found is not None:
            best_name, best_offsets, best_arena = "search", found, _arena(groups, found)
            tried["search"] = best_arena
    by_root = dict(zip(groups.names, (int(o) for o in best_offsets)))
    member_offsets = {b.name: by_root[groups.root[b.name]] for b in buffers}
    return Plan(member_offsets, best_arena, best_name, list(buffers), aliases, tried)


def lower_bound(buffers: list[Buffer], aliases: dict[str, str] | None = None) -> int:
    """Max over steps of the bytes live at that step: no plan can use less.

    In-place pairs may share min(size) bytes at the step where they touch, so that
    much is not counted twice.
    """
    return _live_peak(_Groups(buffers, dict(aliases or {})))


def naive_bytes(buffers: list[Buffer], aliases: dict[str, str] | None = None) -> int:
    """The arena with no reuse at all: every buffer (alias group) gets its own bytes."""
    return int(_Groups(buffers, dict(aliases or {})).size.sum())


def check_plan(buffers: list[Buffer], plan: Plan) -> None:
    """Raise AssertionError if the plan is unsound.

    Unsound: a buffer without an offset, a misaligned or negative offset, a buffer past
    the arena's end, views of one buffer at different offsets, or two buffers live at
    the same step overlapping in memory (except an in-place pair at the same offset).
    """
    groups = _Groups(buffers, plan.aliases)
    assert plan.arena_bytes % ARENA_ROUND == 0, f"arena {plan.arena_bytes} not a multiple of {ARENA_ROUND}"
    for b in buffers:
        assert b.name in plan.offsets, f"buffer {b.name!r} has no offset"
        off = plan.offsets[b.name]
        assert off >= 0, f"buffer {b.name!r}: negative offset {off}"
        assert off % b.align == 0, f"buffer {b.name!r}: offset {off} not aligned to {b.align}"
        assert off + b.size <= plan.arena_bytes, f"buffer {b.name!r} ends past the arena"
        root = groups.root[b.name]
        assert off == plan.offsets[root], f"buffer {b.name!r}: not at the offset of {root!r} it aliases"
    off = np.array([plan.offsets[name] for name in groups.names], dtype=np.int64)
    end = off + groups.size
    for i in range(groups.n):
        clash = groups.conflicts[i] & (off < end[i]) & (off[i] < end)
        for j in np.flatnonzero(clash[i + 1:]) + i + 1:
            allowed = (j in groups.partners[i]) and off[i] == off[j]
            assert allowed, (f"buffers {groups.names[i]!r} [{off[i]}, {end[i]}) and "
                             f"{groups.names[j]!r} [{off[j]}, {end[j]}) are live together and overlap")


def graph_buffers(graph) -> tuple[list[Buffer], dict[str, str]]:
    """The buffers of an inference Graph (tinytrain.ir) and its reshape aliases.

    One buffer per non-constant tensor, live from the step (op index) that writes it to
    the last step that reads it; graph inputs are live from step 0, graph outputs to the
    last step. A reshape's output aliases its input. An op's scratch tensor
    (attrs["scratch"], tinytrain.passes) is live during that op only, sized by
    passes.scratch_bytes, and so is the scratch of the kernel variant chosen for it
    (passes.kernel_scratch); an in-place depthwise output may start at its input.
    """
    from .ops import unit
    from .passes import kernel_scratch, scratch_tensors
    scratch = scratch_tensors(graph)
    last_step = max(len(graph.ops) - 1, 0)
    first: dict[str, int] = {name: 0 for name in graph.inputs}
    last: dict[str, int] = {}
    aliases: dict[str, str] = {}
    for step, op in enumerate(graph.ops):
        for t in op.inputs:
            last[t] = step
        for t in op.outputs:
            first.setdefault(t, step)
        if unit(op.type).aliases_input and not graph.tensors[op.inputs[0]].is_const:
            aliases[op.outputs[0]] = op.inputs[0]
    for name in graph.outputs:
        last[name] = last_step
    buffers = []
    inplace = {op.outputs[0]: op.inputs[0] for op in graph.ops if op.attrs.get("inplace")}
    for t in graph.activations():
        if t.name in scratch:
            step, nbytes = scratch[t.name]
            buffers.append(Buffer(t.name, nbytes, step, step))
            continue
        if t.name not in first:
            raise TinyTrainError(f"tensor {t.name!r} is neither a graph input nor written by a layer")
        start = first[t.name]
        buffers.append(Buffer(t.name, t.nbytes, start, max(last.get(t.name, start), start),
                              inplace_of=inplace.get(t.name)))
    for name, (step, nbytes) in kernel_scratch(graph).items():
        buffers.append(Buffer(name, nbytes, step, step))
    return buffers, aliases


def plan_graph(graph, strategy: str = "best") -> Plan:
    buffers, aliases = graph_buffers(graph)
    return plan(buffers, strategy, aliases=aliases)


# --- alias groups ----------------------------------------------------------------------

def _live_peak(groups: "_Groups") -> int:
    if not groups.n:
        return 0
    steps = int(groups.last.max()) + 1
    live = np.zeros(steps + 1, dtype=np.int64)
    np.add.at(live, groups.first, groups.size)
    np.add.at(live, groups.last + 1, -groups.size)
    live = np.cumsum(live)[:steps]
    for a, b in groups.inplace_pairs:
        live[groups.last[a]] -= min(groups.size[a], groups.size[b])
    return int(live.max())


def _alias_roots(names: list[str], aliases: dict[str, str]) -> dict[str, str]:
    """name -> the buffer at the end of its alias chain (itself if not an alias)."""
    known = set(names)
    for view, base in aliases.items():
        if view not in known or base not in known:
            missing = view if view not in known else base
            raise TinyTrainError(f"memory planner: alias {view!r} -> {base!r} names "
                                 f"unknown buffer {missing!r}")
    roots = {}
    for name in names:
        seen, cur = [name], name
        while cur in aliases:
            cur = aliases[cur]
            if cur in seen:
                raise TinyTrainError(f"memory planner: alias cycle through {name!r}")
            seen.append(cur)
        roots[name] = cur
    return roots


class _Groups:
    """The buffers after merging aliases: arrays indexed by group, plus who conflicts."""

    def __init__(self, buffers: list[Buffer], aliases: dict[str, str]):
        names = [b.name for b in buffers]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise TinyTrainError(f"memory planner: buffer {dup!r} given twice")
        for b in buffers:
            _validate(b, set(names))
        self.root = _alias_roots(names, aliases)
        self.names = [b.name for b in buffers if self.root[b.name] == b.name]
        index = {name: i for i, name in enumerate(self.names)}
        n = self.n = len(self.names)
        self.size = np.zeros(n, dtype=np.int64)
        self.first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        self.last = np.full(n, -1, dtype=np.int64)
        align = [1] * n
        for b in buffers:
            g = index[self.root[b.name]]
            self.size[g] = max(self.size[g], b.size)
            self.first[g] = min(self.first[g], b.first)
            self.last[g] = max(self.last[g], b.last)
            align[g] = math.lcm(align[g], b.align)
        self.align = np.array(align, dtype=np.int64)
        # Live at a common step, and both occupy memory.
        occupied = self.size > 0
        self.conflicts = ((self.first[:, None] <= self.last[None, :])
                          & (self.first[None, :] <= self.last[:, None])
                          & occupied[:, None] & occupied[None, :])
        np.fill_diagonal(self.conflicts, False)
        # In-place pairs (source, dest) that touch at exactly one step.
        self.inplace_pairs: list[tuple[int, int]] = []
        self.partners: list[set[int]] = [set() for _ in range(n)]
        for b in buffers:
            if b.inplace_of is None:
                continue
            src, dst = index[self.root[b.inplace_of]], index[self.root[b.name]]
            if src != dst and self.last[src] == self.first[dst] and (src, dst) not in self.inplace_pairs:
                self.inplace_pairs.append((src, dst))
                self.partners[src].add(dst)
                self.partners[dst].add(src)


def _validate(b: Buffer, names: set[str]) -> None:
    where = f"memory planner: buffer {b.name!r}"
    if b.size < 0:
        raise TinyTrainError(f"{where}: negative size {b.size}")
    if b.first < 0 or b.last < b.first:
        raise TinyTrainError(f"{where}: bad lifetime [{b.first}, {b.last}]")
    if b.align < 1:
        raise TinyTrainError(f"{where}: bad alignment {b.align}")
    if b.inplace_of is not None and b.inplace_of not in names:
        raise TinyTrainError(f"{where}: inplace_of names unknown buffer {b.inplace_of!r}")


# --- placement orders --------------------------------------------------------------------
# Each returns the group indices in the order to place them; ties fall back to the
# order the buffers were given, so plans are deterministic.

def _order_by_size(g: _Groups) -> list[int]:
    return list(np.lexsort((np.arange(g.n), g.first, -g.size)))


def _order_by_lifetime(g: _Groups) -> list[int]:
    return list(np.lexsort((np.arange(g.n), -g.size, -(g.last - g.first))))


def _order_by_area(g: _Groups) -> list[int]:
    return list(np.lexsort((np.arange(g.n), -g.size, -g.size * (g.last - g.first + 1))))


def _order_by_first_use(g: _Groups) -> list[int]:
    return list(np.lexsort((np.arange(g.n), -g.size, g.first)))


def _order_by_breadth(g: _Groups) -> list[int]:
    """Pisarchyk & Lee's greedy by breadth: the busiest steps first, and at each step
    its not-yet-placed buffers largest first."""
    if not g.n:
        return []
    steps = np.arange(int(g.last.max()) + 1)
    live = (g.first[None, :] <= steps[:, None]) & (steps[:, None] <= g.last[None, :])
    breadth = live @ g.size
    order, placed = [], np.zeros(g.n, dtype=bool)
    for s in np.lexsort((steps, -breadth)):
        members = np.flatnonzero(live[s] & ~placed)
        for i in members[np.lexsort((members, -g.size[members]))]:
            order.append(int(i))
        placed[members] = True
    return order


_ORDERS = {
    "size": _order_by_size,
    "lifetime": _order_by_lifetime,
    "area": _order_by_area,
    "first_use": _order_by_first_use,
    "breadth": _order_by_breadth,
}


# --- placement ---------------------------------------------------------------------------

def _round_up(x, multiple):
    return -(-x // multiple) * multiple


def _arena(g: _Groups, offsets: np.ndarray) -> int:
    return _round_up(int((offsets + g.size).max(initial=0)), ARENA_ROUND)


def _place(g: _Groups, order: list[int], fit: str) -> np.ndarray:
    """Place groups in `order`; returns the offset of every group."""
    offsets = np.zeros(g.n, dtype=np.int64)
    placed = np.zeros(g.n, dtype=bool)
    for i in order:
        i = int(i)
        if g.size[i] == 0:
            offsets[i] = 0
        else:
            nearby = np.flatnonzero(g.conflicts[i] & placed)
            offsets[i] = _inplace_offset(g, i, nearby, offsets)
            if offsets[i] < 0:
                offsets[i] = _gap_offset(offsets[nearby], offsets[nearby] + g.size[nearby],
                                         int(g.size[i]), int(g.align[i]), fit)
        placed[i] = True
    return offsets


def _inplace_offset(g: _Groups, i: int, nearby: np.ndarray, offsets: np.ndarray) -> int:
    """The offset of a placed in-place partner that group i can share, else -1."""
    for p in sorted(g.partners[i]):
        if p not in nearby:
            continue
        o = int(offsets[p])
        if o % g.align[i]:
            continue
        # Overlap is allowed only with partners sitting at this very offset.
        others = [j for j in nearby if not (j in g.partners[i] and offsets[j] == o)]
        others = np.array(others, dtype=np.int64)
        if not np.any((offsets[others] < o + g.size[i]) & (o < offsets[others] + g.size[others])):
            return o
    return -1


def _gap_offset(starts: np.ndarray, ends: np.ndarray, size: int, align: int, fit: str) -> int:
    """Lowest (first_fit) or tightest (best_fit) aligned offset where `size` bytes fit
    between the occupied ranges [starts, ends)."""
    if starts.size == 0:
        return 0
    by_start = np.argsort(starts, kind="stable")
    starts, ends = starts[by_start], ends[by_start]
    # Gap k runs from the aligned end of everything before range k to the start of range k.
    reached = np.maximum.accumulate(ends)
    gap_start = _round_up(np.concatenate(([0], reached[:-1])), align)
    room = starts - gap_start
    fits = np.flatnonzero(room >= size)
    top = int(_round_up(reached[-1], align))
    if fits.size == 0:
        return top
    if fit == "first_fit":
        return int(gap_start[fits[0]])
    return int(gap_start[fits[np.argmin(room[fits])]])     # argmin: lowest of the tightest


# --- bounded search below the greedy result ------------------------------------------------
# The greedy orders can miss a layout that fits a smaller arena (e.g. a long-lived residual
# buffer best parked at the top). A depth-first search that places buffers one by one at
# offsets resting on 0, on a live neighbour's end, just under a neighbour's start or under
# the cap, backtracking on dead ends, finds those layouts quickly on the chain-like graphs
# of CNNs. Its work is bounded by a node count, so plans stay fast and deterministic.

SEARCH_PROBES = 4         # caps tried: the lower bound first, then bisection


def _search_budget(n: int) -> int:
    """Search nodes allowed per plan() call, over all probes (a success needs n nodes)."""
    return 4 * n + 400


def _search_below(g: _Groups, greedy_arena: int) -> np.ndarray | None:
    """Offsets of a plan with a smaller arena than greedy_arena, or None."""
    lo = _round_up(_live_peak(g), ARENA_ROUND)
    hi = greedy_arena - ARENA_ROUND           # the largest cap that would be an improvement
    found, budget = None, [_search_budget(g.n)]
    for probe in range(SEARCH_PROBES):
        if lo > hi:
            break
        cap = lo if probe == 0 else min(_round_up((lo + hi) // 2, ARENA_ROUND), hi)
        offsets = _search_orders(g, cap, budget)
        if offsets is None:
            lo = cap + ARENA_ROUND
        else:
            found, hi = offsets, _arena(g, offsets) - ARENA_ROUND
    return found


def _search_orders(g: _Groups, cap: int, budget: list[int]) -> np.ndarray | None:
    for order in (_order_by_first_use(g), _order_by_size(g)):
        offsets = _search(g, [int(i) for i in order], cap, budget)
        if offsets is not None:
            return offsets
    return None


def _search(g: _Groups, order: list[int], cap: int, budget: list[int]) -> np.ndarray | None:
    """Depth-first placement of `order` inside [0, cap); None if the shared node
    budget (budget[0], decremented in place) runs out first."""
    offsets = np.zeros(g.n, dtype=np.int64)
    placed = np.zeros(g.n, dtype=bool)
    stack: list[list] = []       # per depth: [candidate offsets, index of the next one]
    while len(stack) < g.n:
        budget[0] -= 1
        if budget[0] < 0:
            return None
        stack.append([_candidates(g, order[len(stack)], offsets, placed, cap), 0])
        while stack:             # take the next candidate, backtracking past exhausted ones
            top = stack[-1]
            i = order[len(stack) - 1]
            if top[1] < len(top[0]):
                offsets[i], placed[i] = top[0][top[1]], True
                top[1] += 1
                break
            placed[i] = False
            stack.pop()
        else:
            return None
    return offsets


def _candidates(g: _Groups, i: int, offsets: np.ndarray, placed: np.ndarray, cap: int) -> list[int]:
    """Aligned offsets, lowest first, where group i fits below cap beside what is placed."""
    size, align = int(g.size[i]), int(g.align[i])
    if size == 0:
        return [0]
    nearby = np.flatnonzero(g.conflicts[i] & placed)
    starts, ends = offsets[nearby], offsets[nearby] + g.size[nearby]
    partner = np.zeros(nearby.size, dtype=bool)
    if g.partners[i]:
        partner = np.isin(nearby, list(g.partners[i]))
    cand = np.concatenate(([0, cap - size], _round_up(ends, align), starts - size, starts[partner]))
    cand = cand - cand % align                # round down (ends are already aligned)
    cand = np.unique(cand[(cand >= 0) & (cand + size <= cap)])
    if nearby.size and cand.size:
        clash = (starts[None, :] < cand[:, None] + size) & (cand[:, None] < ends[None, :])
        clash &= ~(partner[None, :] & (starts[None, :] == cand[:, None]))
        cand = cand[~clash.any(axis=1)]
    return [int(c) for c in cand]
