"""Graph passes that cut the activation memory of the forward pass.

    optimize_for_memory(graph, frozen_ops=None) -> Graph
        fuse 1x1 conv2d + depthwise_conv2d pairs (fuse_pw_dw) and make the remaining
        stride-1 depthwise ops in-place (inplace_dw). Int8 graphs only (float graphs are
        returned unchanged). For training pass `frozen_ops` (see frozen_prefix): only
        those ops are rewritten, as their backward is never run.

    select_kernels(graph, simd) -> Graph
        record, per op, the optimised kernel variant the board runs (attrs["variant"]).

Scratch memory: an op with attrs["scratch"] uses that non-constant tensor's arena bytes
(scratch_bytes) during its own step only; planners size and place it as such. A chosen
variant may need one more buffer for that step (kernel_scratch: not a graph tensor).
"""
from __future__ import annotations

from ..ir import Graph, Op
from ..ops import unit
from ..ops.pointwise_depthwise_conv2d import FUSED, ring_rows, split_op
from .fuse_pw_dw import fuse_pw_dw
from .inplace_dw import inplace_dw
from .select_kernels import kernel_scratch, kernel_scratch_name, select_kernels

__all__ = ["FUSED", "ring_rows", "optimize_for_memory", "frozen_prefix", "scratch_bytes", "scratch_tensors",
           "split_op", "fuse_pw_dw", "inplace_dw", "select_kernels", "kernel_scratch", "kernel_scratch_name"]


def optimize_for_memory(graph: Graph, frozen_ops: set[str] | None = None) -> Graph:
    if not graph.is_quantized:
        return graph
    g = fuse_pw_dw(graph, frozen_ops)
    g = inplace_dw(g, frozen_ops)
    return g.validate()


def frozen_prefix(graph: Graph, scheme) -> set[str]:
    """Names of the ops strictly before the earliest op the training `scheme` (a bound
    tinytrain.training.scheme.Scheme) updates: no gradient flows into them, no mask or
    saved copy of theirs is kept, so their forward may be rewritten freely. (The save
    step of the earliest trained layer's input copies from a normal output tensor.)"""
    trained = set(scheme.layers)
    frozen = set()
    for op in graph.ops:
        if op.name in trained:
            break
        frozen.add(op.name)
    return frozen


def scratch_bytes(graph: Graph, op: Op) -> int:
    """Arena bytes of the scratch of op (0 if it has none)."""
    return unit(op.type).scratch_bytes(graph, op)


def scratch_tensors(graph: Graph) -> dict[str, tuple[int, int]]:
    """scratch tensor name -> (step index of its op, bytes)."""
    return {op.attrs["scratch"]: (i, scratch_bytes(graph, op))
            for i, op in enumerate(graph.ops) if op.attrs.get("scratch")}
