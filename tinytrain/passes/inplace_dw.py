"""Mark stride-1 depthwise convolutions whose output has its input's shape as in-place:
their kernel (tt_depthwise_conv2d_inplace_s8) copies one input channel plane to a small
scratch and writes that output channel over it, so the output may share the input's
bytes when the input dies at that op (the planner decides: Buffer.inplace_of)."""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Op, Tensor


def can_inplace(graph: Graph, op: Op) -> bool:
    if op.type != "depthwise_conv2d" or op.attrs.get("inplace"):
        return False
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return (x.dtype == y.dtype == "int8" and len(x.shape) == 4 and x.shape == y.shape
            and tuple(op.attrs.get("stride", (1, 1))) == (1, 1) and op.inputs[0] not in graph.inputs)


def plane_name(op: Op) -> str:
    return f"{op.name}.plane"


def inplace_dw(graph: Graph, allowed: set[str] | None = None) -> Graph:
    """A new graph whose eligible depthwise ops carry attrs inplace=True and
    scratch=<a new (H*W,) int8 tensor for one channel plane>."""
    tensors = dict(graph.tensors)
    ops = []
    for op in graph.ops:
        if can_inplace(graph, op) and (allowed is None or op.name in allowed):
            _, h, w, _ = graph.tensors[op.inputs[0]].shape
            scratch = plane_name(op)
            tensors[scratch] = Tensor(scratch, (h * w,), "int8")
            op = replace(op, attrs={**op.attrs, "inplace": True, "scratch": scratch})
        ops.append(op)
    return Graph(graph.name, tensors, ops, list(graph.inputs), list(graph.outputs), dict(graph.layer_names))
