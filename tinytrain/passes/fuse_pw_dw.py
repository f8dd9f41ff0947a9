"""Fuse a 1x1 conv2d into the depthwise_conv2d it feeds: one `pointwise_depthwise_conv2d`
op (tinytrain/ops/pointwise_depthwise_conv2d.py), whose kernel computes the expanded tensor
a few rows at a time into a ring buffer, so the (often largest) expanded activation never
exists in full."""
from __future__ import annotations

from ..ir import Graph, Op
from ..ops.pointwise_depthwise_conv2d import can_fuse, fuse_op


def fuse_pw_dw(graph: Graph, allowed: set[str] | None = None) -> Graph:
    """A new graph with every fusable pair fused (only pairs whose two op names are in
    `allowed`, when given). Tensors are shared with the input graph, not copied."""
    ops: list[Op] = []
    fused_dw: set[str] = set()
    by_name = {op.name: op for op in graph.ops}
    for i, op in enumerate(graph.ops):
        if op.name in fused_dw:
            continue
        nxt = graph.ops[i + 1] if i + 1 < len(graph.ops) else None
        consumers = graph.consumers(op.outputs[0]) if op.outputs else []
        dw = consumers[0] if len(consumers) == 1 else None
        # the dw must follow directly, so the schedule (and every other lifetime) is unchanged
        if (dw is not None and dw is nxt and can_fuse(graph, op, dw)
                and (allowed is None or (op.name in allowed and dw.name in allowed))):
            ops.append(fuse_op(op, by_name[dw.name]))
            fused_dw.add(dw.name)
        else:
            ops.append(op)
    return Graph(graph.name, dict(graph.tensors), ops, list(graph.inputs), list(graph.outputs),
                 dict(graph.layer_names))
