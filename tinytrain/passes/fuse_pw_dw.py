"""Fuse a 1x1 conv2d into the depthwise_conv2d it feeds: one `pointwise_depthwise_conv2d`
op whose kernel computes the expanded tensor a few rows at a time into a ring buffer, so
the (often largest) expanded activation never exists in full (TinyEngine / MCUNetV2's
patch-free version of the same idea)."""
from __future__ import annotations

from ..ir import Graph, Op

FUSED = "pointwise_depthwise_conv2d"


def can_fuse(graph: Graph, pw: Op, dw: Op) -> bool:
    """pw is a 1x1, stride-1, unpadded conv2d whose only reader is the depthwise dw."""
    if pw.type != "conv2d" or dw.type != "depthwise_conv2d":
        return False
    mid = pw.outputs[0]
    if dw.inputs[0] != mid or mid in graph.outputs or len(graph.consumers(mid)) != 1:
        return False
    w = graph.tensors[pw.inputs[1]]
    a = pw.attrs
    if w.shape[1:3] != (1, 1) or tuple(a.get("stride", (1, 1))) != (1, 1):
        return False
    if tuple(a.get("pad", (0, 0, 0, 0))) != (0, 0, 0, 0) or len(pw.inputs) < 3 or len(dw.inputs) < 3:
        return False
    x, t = graph.tensors[pw.inputs[0]], graph.tensors[mid]
    return len(x.shape) == 4 and x.dtype == t.dtype == "int8"


def fuse_op(pw: Op, dw: Op) -> Op:
    a = dw.attrs
    attrs = dict(stride=tuple(a.get("stride", (1, 1))), pad=tuple(a.get("pad", (0, 0, 0, 0))),
                 dilation=tuple(a.get("dilation", (1, 1))), activation=a.get("activation", "none"),
                 pw_activation=pw.attrs.get("activation", "none"), intermediate=pw.outputs[0],
                 scratch=pw.outputs[0], pw_name=pw.name, dw_name=dw.name)
    return Op(f"{pw.name}+{dw.name}", FUSED, [pw.inputs[0], pw.inputs[1], pw.inputs[2],
                                              dw.inputs[1], dw.inputs[2]], list(dw.outputs), attrs)


def split_op(op: Op) -> tuple[Op, Op]:
    """The two original ops of a fused op (the refops and the requantization use them)."""
    a = op.attrs
    mid = a["intermediate"]
    pw = Op(a["pw_name"], "conv2d", [op.inputs[0], op.inputs[1], op.inputs[2]], [mid],
            dict(stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), activation=a["pw_activation"]))
    dw = Op(a["dw_name"], "depthwise_conv2d", [mid, op.inputs[3], op.inputs[4]], list(op.outputs),
            dict(stride=a["stride"], pad=a["pad"], dilation=a["dilation"], activation=a["activation"]))
    return pw, dw


def ring_rows(graph: Graph, op: Op) -> int:
    """Rows of the expanded tensor the fused kernel keeps: the dilated kernel height."""
    kh = graph.tensors[op.inputs[3]].shape[0]
    dh = op.attrs.get("dilation", (1, 1))[0]
    return min((kh - 1) * dh + 1, graph.tensors[op.attrs["intermediate"]].shape[1])


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
