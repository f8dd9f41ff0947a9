"""Channel reordering for partial-channel updates.

A sparse scheme trains the first k input channels of a layer's weight. Which k matters:
the paper trains the channels of largest weight magnitude. Rather than index them at run
time, the graph is rewritten offline: the trained layer's input channels are sorted by
descending L1 weight magnitude, and every tensor that shares those channels (the
producer's outputs, channel-wise ops, residual adds, the other consumers) is permuted the
same way, so the function the graph computes is unchanged (int8: bit for bit) and the
device updates channels [0, k).

Where the permutation cannot be absorbed (the channels come from the graph input, reach
the graph output, or pass a flatten of a spatial map) the layer falls back to an explicit
`LayerUpdate.channel_index` (the kernels take it as tt_channels.index).
"""
from __future__ import annotations

import copy

import numpy as np

from ..ir import Graph, Op
from ..ops import unit
from .scheme import Scheme, bind_scheme



def input_channel_importance(graph: Graph, op: Op) -> np.ndarray:
    """L1 magnitude of the real weights per input channel (depthwise: per channel)."""
    w = graph.tensors[op.inputs[1]]
    data = np.abs(w.data.astype(np.float64))
    if w.quant is not None:
        shape = [1] * data.ndim
        if w.quant.per_channel:
            shape[w.quant.axis] = -1
        data = data * w.quant.scale.reshape(shape)
    axis = unit(op.type).weight_in_axis % data.ndim
    return data.sum(axis=tuple(i for i in range(data.ndim) if i != axis))


def _spatial_is_one(graph: Graph, name: str) -> bool:
    s = graph.tensors[name].shape
    return len(s) == 2 or (len(s) == 4 and s[1] == 1 and s[2] == 1)


def channel_closure(graph: Graph, tensor: str) -> tuple[set[str], dict[str, set[int]]] | None:
    """The activations that must share a channel permutation of `tensor`, and the
    constant axes to permute with them; None when it cannot be absorbed by the graph."""
    acts: set[str] = set()
    consts: dict[str, set[int]] = {}
    todo = [tensor]

    def axis(name: str, ax: int) -> None:
        consts.setdefault(name, set()).add(ax)

    while todo:
        t = todo.pop()
        if t in acts:
            continue
        acts.add(t)
        if t in graph.outputs or t in graph.inputs:
            return None
        prod = graph.producer(t)
        pu = unit(prod.type)
        if pu.channelwise:
            for name, ax in pu.channel_params(graph, prod).items():
                axis(name, ax)
            # an operand broadcast along the channels (one channel) is the same for all of them
            channels = graph.tensors[t].shape[-1:]
            todo.extend(x for x in prod.inputs
                        if not graph.tensors[x].is_const and graph.tensors[x].shape[-1:] == channels)
        elif pu.weighted:                       # mixes channels: its output channels are its own
            axis(prod.inputs[1], pu.weight_out_axis)
            axis(prod.inputs[2], 0)
        elif pu.aliases_input and _spatial_is_one(graph, prod.inputs[0]):
            todo.append(prod.inputs[0])
        else:
            return None
        for c in graph.consumers(t):
            cu = unit(c.type)
            if cu.weighted and not cu.channelwise and c.inputs[0] == t:
                axis(c.inputs[1], cu.weight_in_axis)
            elif cu.channelwise or (cu.aliases_input and _spatial_is_one(graph, t)):
                todo.extend(c.outputs)          # (a depthwise's own axes: its output's producer rule)
            else:
                return None
    return acts, consts


def permute_channels(graph: Graph, tensor: str, perm) -> tuple[Graph, set[str]] | None:
    """A copy of `graph` where `tensor` (and its closure) has channels in order `perm`
    (new channel j = old channel perm[j]); None if the graph cannot absorb it."""
    closure = channel_closure(graph, tensor)
    if closure is None:
        return None
    acts, consts = closure
    perm = np.asarray(perm, dtype=np.int64)
    g = copy.deepcopy(graph)
    for name, axes in consts.items():
        t = g.tensors[name]
        for ax in axes:
            t.data = np.ascontiguousarray(np.take(t.data, perm, axis=ax))
            if t.quant is not None and t.quant.per_channel and t.quant.axis == ax:
                t.quant.scale = t.quant.scale[perm]
                t.quant.zero_point = t.quant.zero_point[perm]
    return g, acts


def reorder_for_scheme(graph: Graph, scheme) -> tuple[Graph, Scheme]:
    """(graph with the trained channels of every partial update first, the scheme on it).
    Layers whose permutation the graph cannot absorb (or that would conflict with an
    earlier one) get an explicit channel_index instead."""
    if not isinstance(scheme, Scheme):
        scheme = bind_scheme(scheme, graph)
    layers = copy.deepcopy(scheme.layers)
    ops = {op.name: op for op in graph.ops}
    g, taken = graph, set()
    for u in layers.values():
        if not u.partial or u.channel_index is not None:
            continue
        op = ops[u.op]
        perm = np.argsort(-input_channel_importance(g, op), kind="stable")
        k = u.in_channels
        if np.array_equal(np.sort(perm[:k]), np.arange(k)):
            continue                      # the largest channels already come first
        done = permute_channels(g, op.inputs[0], perm)
        if done is None or done[1] & taken:
            u.channel_index = sorted(int(c) for c in perm[:k])
            u.in_channels = None
            continue
        g, acts = done
        taken |= acts
    return g, Scheme(scheme.name, layers)
