"""Choose, per op, the optimised kernel variant the board runs (tt_<op>_<t>_dsp / _mve of
firmware/kernels/<op>/) and record it as attrs["variant"].

The choice is made once, before the memory plan, because a variant may need its own
scratch (an im2col row, the pointwise rows of the fused kernel: `kernel_scratch`, an arena
buffer live during the op only) or a different one (the in-place depthwise variants keep a
ring of input rows instead of the reference's channel plane: the unit's `scratch_bytes`).
The planner sizes both from the unit, the emitter calls the variant with its extra
arguments. "variant" is a board fact, not a model fact: Graph.fingerprint ignores it, so a
model has one hash on every board.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Op
from ..ops import unit


def select_kernels(graph: Graph, simd: str) -> Graph:
    """A new graph whose ops carry attrs["variant"] ("dsp", "mve") where the board's `simd`
    ("none", "dsp", "helium") runs a variant of the kernel the op calls; ops without one are
    left as they are (any earlier choice is dropped, so the graph may be re-targeted)."""
    from ..cgen.kernels import VARIANTS_BY_SIMD, kernel_index
    index = kernel_index()
    ops = []
    for op in graph.ops:
        attrs = {k: v for k, v in op.attrs.items() if k != "variant"}
        bare = replace(op, attrs=attrs)
        fn = unit(op.type).simd_kernel(graph, bare)
        for v in VARIANTS_BY_SIMD.get(simd, ()) if fn else ():
            if index.has(f"{fn}_{v}"):
                attrs["variant"] = v
                break
        ops.append(replace(op, attrs=attrs))
    return Graph(graph.name, dict(graph.tensors), ops, list(graph.inputs), list(graph.outputs),
                 dict(graph.layer_names))


def kernel_scratch_name(op: Op) -> str:
    return f"{op.name}.kernel_scratch"


def kernel_scratch(graph: Graph) -> dict[str, tuple[int, int]]:
    """Arena buffers the chosen variants need beside their op's tensors: name -> (step index
    of the op, bytes). They are not graph tensors (the model does not change with the board)."""
    out = {}
    for i, op in enumerate(graph.ops):
        n = unit(op.type).kernel_scratch_bytes(graph, op)
        if n:
            out[kernel_scratch_name(op)] = (i, int(n))
    return out
