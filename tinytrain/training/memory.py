"""Training memory plan: buffer lifetimes over the steps of a training program, one
arena planned by tinytrain.planner, and the memory report of `inspect --train`."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import DTYPE_BYTES, Graph
from ..ops import unit
from ..passes import kernel_scratch_name
from .program import TrainingProgram, trained_in_channels

ALIGN = 4    # every arena buffer starts on a word boundary (float / int32 access)


@dataclass
class Lifetime:
    name: str
    size: int
    first: int
    last: int
    kind: str
    inplace_of: str | None = None   # may share this buffer's bytes (in-place depthwise)


def lifetimes(prog: TrainingProgram) -> dict[str, Lifetime]:
    """Interval [first, last] (step indices, inclusive) of every real (non-alias) buffer."""
    g = prog.graph
    root = {}
    for name, b in prog.buffers.items():
        r = name
        while prog.buffers[r].alias_of is not None:
            r = prog.buffers[r].alias_of
        root[name] = r
    spans: dict[str, list[int]] = {}

    def use(buf: str, step: int) -> None:
        r = root[buf]
        s = spans.setdefault(r, [step, step])
        s[0], s[1] = min(s[0], step), max(s[1], step)

    for i, f in enumerate(prog.forward):
        op = next(o for o in g.ops if o.name == f.op)
        for t in op.inputs:
            if t in prog.buffers:
                use(t, i)
        for t in op.outputs:
            use(t, i)
        if op.attrs.get("scratch"):          # tinytrain.passes: live during this op only
            use(op.attrs["scratch"], i)
        if kernel_scratch_name(op) in prog.buffers:    # the op's kernel variant's (select_kernels)
            use(kernel_scratch_name(op), i)
        if f.mask:
            use(f.mask, i)
        for _, saved, _ in f.saves:
            use(saved, i)
    for t in g.inputs:
        use(t, 0)
    loss_i = len(prog.forward)
    use(prog.loss_step.logits, loss_i)
    use(prog.loss_step.grad, loss_i)
    for t in g.outputs:
        use(t, loss_i - 1)
    for j, b in enumerate(prog.backward):
        i = loss_i + 1 + j
        use(b.grad_out, i)
        for gx in b.grad_inputs.values():
            use(gx, i)
        if b.mask:
            use(b.mask, i)
        for saved in b.saved.values():
            use(saved, i)
        if b.scratch:
            use(b.scratch, i)
    out = {}
    for r, (first, last) in spans.items():
        b = prog.buffers[r]
        out[r] = Lifetime(r, _aligned(b.nbytes), first, last, b.kind)
    for op in g.ops:
        if op.attrs.get("inplace"):
            out[root[op.outputs[0]]].inplace_of = root[op.inputs[0]]
    return out


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_arena(lts: dict[str, Lifetime]) -> tuple[dict[str, int], int]:
    """Offsets of the buffers in one arena, and its size (tinytrain.planner, best strategy)."""
    from .. import planner
    if not lts:
        return {}, 0
    p = planner.plan([planner.Buffer(l.name, l.size, l.first, l.last, ALIGN,
                                     inplace_of=l.inplace_of if l.inplace_of in lts else None)
                      for l in lts.values()])
    return dict(p.offsets), int(p.arena_bytes)


def param_bytes(prog: TrainingProgram) -> dict[str, int]:
    """Parameters: trained ones and everything their update keeps (momentum, the update
    mode's state) in SRAM, the rest in flash."""
    from .qas import RNG_STATE_BYTES, update_mode
    g = prog.graph
    trained_sram = 0
    elements = 0           # trained elements (the compact layout of the updates)
    trained_names = set()
    for name, u in prog.scheme.layers.items():
        op = next(o for o in g.ops if o.name == name)
        w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
        if u.weight:
            trained_sram += w.nbytes
            trained_names.add(w.name)
            elements += w.size * trained_in_channels(g, op, u) // _in(w, op)
        if u.bias:
            trained_sram += b.nbytes
            trained_names.add(b.name)
            elements += b.size
    mode = update_mode(prog.update)
    update_state = elements * mode.bytes_per_element + (RNG_STATE_BYTES if mode.name == "stochastic" else 0)
    momentum = 4 * elements * int(prog.momentum)
    frozen = sum(t.nbytes for t in g.constants() if t.name not in trained_names)
    return {"trainable_weights": trained_sram, "momentum": momentum, "update_state": update_state,
            "optimizer_state": momentum + update_state,
            "frozen": frozen, "requant_tables": _requant_bytes(g), "all_params": frozen + trained_sram}


def _in(w, op) -> int:
    return w.shape[unit(op.type).weight_in_axis]


def _requant_bytes(g: Graph) -> int:
    """int8 graphs: an int32 multiplier and shift per output channel of every op that
    requantizes per channel (a first estimate: Compiled.memory counts what the C holds)."""
    return sum(unit(op.type).requant_table_bytes(g, op) for op in g.ops)


def forward_peak(prog: TrainingProgram) -> int:
    """Arena of inference alone (activations only, same planner): the forward peak."""
    lts = {k: v for k, v in lifetimes(prog).items() if v.kind in ("activation", "saved", "scratch")}
    n_fwd = len(prog.forward)
    fwd = {k: Lifetime(v.name, v.size, v.first, min(v.last, n_fwd - 1), v.kind, v.inplace_of)
           for k, v in lts.items() if v.first < n_fwd}
    return plan_arena(fwd)[1]


def memory_report(prog: TrainingProgram) -> dict:
    """The `memory` section of `inspect --train --json`."""
    lts = lifetimes(prog)
    offsets, arena = plan_arena(lts)
    params = param_bytes(prog)
    # per kind: the most bytes of that kind live at any one step
    n_all = max(l.last for l in lts.values()) + 1
    kind_live: dict[str, list[int]] = {}
    for l in lts.values():
        arr = kind_live.setdefault(l.kind, [0] * n_all)
        for s in range(l.first, l.last + 1):
            arr[s] += l.size
    by_kind = {k: max(v) for k, v in kind_live.items()}
    # what is live at the step where the most bytes are live, by kind
    n_steps = max(l.last for l in lts.values()) + 1
    live = [0] * n_steps
    for l in lts.values():
        for s in range(l.first, l.last + 1):
            live[s] += l.size
    peak_step = max(range(n_steps), key=lambda s: live[s])
    at_peak: dict[str, int] = {}
    for l in lts.values():
        if l.first <= peak_step <= l.last:
            at_peak[l.kind] = at_peak.get(l.kind, 0) + l.size
    steps = prog.steps()
    peak_what = steps[peak_step]
    trainable = params["trainable_weights"] + params["optimizer_state"]
    return {
        "arena_bytes": arena,
        "trainable_param_bytes": trainable,
        "trainable_weight_bytes": params["trainable_weights"],
        "optimizer_state_bytes": params["optimizer_state"],     # momentum + update state
        "momentum_bytes": params["momentum"],
        "update_mode": prog.update,
        "update_state_bytes": params["update_state"],           # what the update mode keeps
        "frozen_param_bytes": params["frozen"],
        # breakdown: per kind, the most bytes of that kind live at once; at_peak: at the arena peak
        "total_sram_bytes": arena + trainable,
        "flash_bytes": params["all_params"] + params["requant_tables"],
        "forward_peak_bytes": forward_peak(prog),
        "breakdown": {k: by_kind.get(k, 0) for k in ("activation", "saved", "mask", "gradient", "scratch")},
        "at_peak": {"step": _step_label(peak_what), "live_bytes": live[peak_step],
                    **{k: at_peak.get(k, 0) for k in ("activation", "saved", "mask", "gradient", "scratch")}},
        "offsets": offsets,
    }


def _step_label(step) -> str:
    kind = type(step).__name__.replace("Step", "").lower()
    return f"{kind}:{getattr(step, 'op', getattr(step, 'loss', ''))}"
