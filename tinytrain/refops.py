"""The numpy reference of a whole graph: run it op by op with each op unit's reference
(tinytrain/ops/): int8 ops bit-exact with LiteRT's reference kernels and with the C
kernels, float32 ops in plain float math. Activations are NHWC with batch 1.
"""
from __future__ import annotations

import numpy as np

from .errors import TinyTrainError
from .ir import Graph, Op
from .ops import unit


def run_op(graph: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    """One op on its input arrays (constants included, in op.inputs order)."""
    return unit(op.type).run(graph, op, args)


def run_graph(graph: Graph, inputs: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run the graph op by op. Returns the graph outputs (every tensor if keep_all)."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise TinyTrainError(f"graph input {name!r} not given")
        t = graph.tensors[name]
        v = np.asarray(inputs[name])
        if v.size != t.size:
            raise TinyTrainError(f"graph input {name!r}: {v.shape} does not match {t.shape}")
        values[name] = v.astype(t.dtype).reshape(t.shape)
    for t in graph.constants():
        values[t.name] = t.data
    for op in graph.ops:
        values[op.outputs[0]] = run_op(graph, op, [values[n] for n in op.inputs])
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}
