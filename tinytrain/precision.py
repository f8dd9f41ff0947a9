"""Precision of a float model's training build: fp32 (as imported), fp16, mixed.

    fp16   activations, saved tensors, gradients and trained weights in half precision
    mixed  the same, plus an fp32 master copy of the trained weights that the update
           writes (the half weights are its rounding)

`to_float16(graph)` rewrites a float32 graph: every float32 constant and activation becomes
float16 (constants rounded to nearest even), except the graph's input and output, which
stay float32 with a `cast` op at each edge (tinytrain/ops/cast.py), so the serial link, the
host runners and the loss see a float32 model. Each op must have a float16 form (its unit's
`float16`, `ref_f16` and `_f16` kernels); otherwise the layer is named.

On cores without half-precision arithmetic (Cortex-M4/M7: only conversions) FP16 is a
storage format computed in FP32; on the Cortex-M55 the Helium `_f16_mve` variants compute
in half (`HELIUM_OPS`, chosen per layer at compile time and recorded in the op's
`f16_variant` attribute so that the numpy reference models the variant the board runs).
"""
from __future__ import annotations

import numpy as np

from .errors import TinyTrainError, UnsupportedError
from .ir import Graph, Op, Tensor

PRECISIONS = ("fp32", "fp16", "mixed")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise TinyTrainError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def to_float16(graph: Graph) -> Graph:
    """The float16 form of a float32 graph (see the module docstring)."""
    from .ops import unit
    if graph.is_quantized or any(t.dtype == "int8" for t in graph.tensors.values()):
        raise TinyTrainError(f"model {graph.name!r} is int8: precision fp16 / mixed needs a float model "
                             "(a .keras / float graph)")
    for op in graph.ops:
        if not unit(op.type).float16:
            raise UnsupportedError(op.name, f"{op.type} in float16 (precision fp16 / mixed)")
    tensors: dict[str, Tensor] = {}
    for name, t in graph.tensors.items():
        if t.dtype != "float32" or name in graph.inputs or name in graph.outputs:
            tensors[name] = t
            continue
        data = None if t.data is None else np.asarray(t.data, np.float32).astype(np.float16)
        tensors[name] = Tensor(name, t.shape, "float16", None, data)
    ops: list[Op] = []
    rename: dict[str, str] = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype == "float32":
            half = _unique(tensors, f"{name}.f16")
            tensors[half] = Tensor(half, t.shape, "float16")
            rename[name] = half
            ops.append(Op(_unique_op(graph, f"{name}_to_f16"), "cast", [name], [half]))
    out_casts = []
    for name in graph.outputs:
        t = graph.tensors[name]
        if t.dtype == "float32":
            half = _unique(tensors, f"{name}.f16")
            tensors[half] = Tensor(half, t.shape, "float16")
            rename[name] = half
            out_casts.append(Op(_unique_op(graph, f"{name}_to_f32"), "cast", [half], [name]))
    for op in graph.ops:
        ops.append(Op(op.name, op.type, [rename.get(t, t) if t in graph.inputs else t for t in op.inputs],
                      [rename.get(t, t) for t in op.outputs], dict(op.attrs)))
    ops += out_casts
    # schedule order of tensors: the planner walks activations in dict order
    ordered = {}
    for name in graph.inputs:
        ordered[name] = tensors[name]
        if name in rename:
            ordered[rename[name]] = tensors[rename[name]]
    for name, t in tensors.items():
        if name in graph.outputs:
            continue
        ordered.setdefault(name, t)
    for name in graph.outputs:
        ordered[name] = tensors[name]
    return Graph(graph.name, ordered, ops, list(graph.inputs), list(graph.outputs),
                 dict(graph.layer_names)).validate()


def _unique(tensors, base: str) -> str:
    name, i = base, 1
    while name in tensors:
        name, i = f"{base}{i}", i + 1
    return name


def _unique_op(graph: Graph, base: str) -> str:
    names = {op.name for op in graph.ops}
    name, i = base, 1
    while name in names:
        name, i = f"{base}{i}", i + 1
    return name


# Ops with a Helium float16 variant (forward, grad input, fused weight update), by unit type.
HELIUM_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")


def half_variants(graph: Graph, board) -> Graph:
    """Record in each op that has a Helium float16 variant which kernels the board will run
    (attrs["f16_variant"]: "mve" on a Helium board): the emitter asks for that variant and
    the numpy reference computes what it computes."""
    from .cgen.kernels import kernel_index
    if board.simd != "helium":
        return graph
    index = kernel_index()
    for op in graph.ops:
        if op.type in HELIUM_OPS and graph.tensors[op.inputs[0]].dtype == "float16" \
                and index.has(f"tt_{op.type}_f16_mve"):
            op.attrs["f16_variant"] = "mve"
    return graph


def storage_note(board) -> str:
    """How a board computes half precision (the memory plan's note)."""
    if board.simd == "helium":
        return (f"{board.name}: FP16 storage; conv2d, depthwise and fully connected compute in FP16 with "
                "Helium (vfmaq_f16, fused, half accumulators), the weight updates in FP32 (Helium), the other "
                "kernels in FP32 (max pooling and the relu masks with Helium, exact)")
    if board.arch == "arm":
        return (f"{board.name} ({board.core}): FP16 is a storage format (half the bytes) computed in FP32: "
                "the core has no half-precision arithmetic, only conversions")
    return f"{board.name}: FP16 is a storage format computed in FP32 (portable _f16 kernels)"
