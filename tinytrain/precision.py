"""Precision of a float model's training build: fp32 (as imported), fp16, mixed.

    fp16   activations, saved tensors, gradients and trained weights in half precision
    mixed  the same, plus an fp32 master copy of the trained weights that the update
           writes (the half weights are its rounding)

`to_float16(graph)` rewrites a float32 graph: every float32 constant and activation becomes
float16 (constants rounded to nearest even), except the graph's input and output, which
stay float32 with a `cast` op at each edge (tinytrain/ops/cast.py), so the serial link, the
host runners and the loss see a float32 model. Each op must have a float16 form (its unit's
`float16`, `ref_f16` and `_f16` kernels); otherwise the layer is named. A softmax that makes
the graph's output (the probabilities of a classifier) stays float32 after the cast: the
cross-entropy loss reads its input, the float32 logits, as in a float32 build.

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
        raise TinyTrainError(f"model {graph.name!r} is int8: precision fp16 / mixed trains an FP16 head of an "
                             "int8 model, which needs a training scheme (--train); for inference use a float "
                             "model (a .keras / float graph)")
    final = _final_softmaxes(graph)
    for op in graph.ops:
        if not unit(op.type).float16 and op.name not in final:
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
    logits32: dict[str, str] = {}           # a final softmax's half input -> its float32 copy
    for op in graph.ops:
        if op.name in final:
            x = op.inputs[0]
            logits32[x] = _unique(tensors, f"{x}.f32")
            tensors[logits32[x]] = Tensor(logits32[x], graph.tensors[x].shape, "float32")
    for name in graph.outputs:
        t = graph.tensors[name]
        if t.dtype == "float32" and graph.producer(name).name not in final:
            half = _unique(tensors, f"{name}.f16")
            tensors[half] = Tensor(half, t.shape, "float16")
            rename[name] = half
            out_casts.append(Op(_unique_op(graph, f"{name}_to_f32"), "cast", [half], [name]))
    for op in graph.ops:
        inputs = [rename.get(t, t) if t in graph.inputs else t for t in op.inputs]
        if op.name in final:
            x = op.inputs[0]
            ops.append(Op(_unique_op(graph, f"{x}_to_f32"), "cast", [x], [logits32[x]]))
            inputs = [logits32[x]]
        ops.append(Op(op.name, op.type, inputs, [rename.get(t, t) for t in op.outputs], dict(op.attrs)))
    ops += out_casts
    # schedule order of tensors: the planner walks activations in dict order
    ordered = {}
    for name in graph.inputs:
        ordered[name] = tensors[name]
        if name in rename:
            ordered[rename[name]] = tensors[rename[name]]
    for name, t in tensors.items():
        if name in graph.outputs or name in logits32.values():
            continue
        ordered.setdefault(name, t)
        if name in logits32:
            ordered[logits32[name]] = tensors[logits32[name]]
    for name in graph.outputs:
        ordered[name] = tensors[name]
    return Graph(graph.name, ordered, ops, list(graph.inputs), list(graph.outputs),
                 dict(graph.layer_names)).validate()


def _final_softmaxes(graph: Graph) -> set[str]:
    """Softmax ops that make a graph output from an activation computed in the graph: they stay
    float32 (the loss reads their input)."""
    from .ops import unit
    out = set()
    for name in graph.outputs:
        op = graph.producer(name)
        if op is not None and unit(op.type).loss_reads_input \
                and op.inputs[0] not in graph.inputs and graph.tensors[op.inputs[0]].dtype == "float32":
            out.add(op.name)
    return out


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


# Ops whose Helium float16 variants (forward, grad input, fused weight update) compute other
# bits than their portable kernels, by unit type: the reference must know which one a layer
# runs. (Variants with the portable bits, add, mul, maximum / minimum, max and average pool,
# leaky relu, prelu, the global mean, the bias update, need no record.)
HELIUM_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv", "hard_swish")


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
                "Helium (vfmaq_f16, fused, half accumulators), add, mul, maximum, minimum, leaky relu and "
                "prelu in FP16 with vaddq_f16 / vmulq_f16 / compares (the portable kernels' bits), hard swish "
                "in FP16 (its own bits), the weight updates in FP32 (Helium), the bias updates, average pooling and "
                "the global mean in FP32 lanes with Helium (the portable kernels' bits), the other kernels in FP32 "
                "(max pooling and the relu masks with Helium, exact)")
    if board.arch == "arm":
        return (f"{board.name} ({board.core}): FP16 is a storage format (half the bytes) computed in FP32: "
                "the core has no half-precision arithmetic, only conversions")
    return f"{board.name}: FP16 is a storage format computed in FP32 (portable _f16 kernels)"


# --- int8 models: the frozen part stays int8, the trained head computes in float ------------------

def real_values(t: Tensor) -> np.ndarray:
    """An int8 / int32 constant's real values (scale * (q - zero point), per channel where the
    tensor is quantized per channel), in float64."""
    q = t.quant
    shape = [1] * t.data.ndim
    if q.per_channel:
        shape[q.axis] = -1
    return (np.asarray(t.data, np.float64) - q.zero_point.reshape(shape)) * q.scale.reshape(shape)


def _softmax_after_cast(ops: list[Op], tensors: dict, inserted: dict, out_name: str, graph: Graph) -> None:
    """... -> x -> softmax -> p (half) -> cast -> output becomes ... -> x -> cast -> x.f32 ->
    softmax -> output (float32): the loss reads the float32 logits."""
    from .ops import unit
    cast = next((op for op in ops if out_name in op.outputs), None)
    soft = next((op for op in ops if cast is not None and cast.inputs[0] in op.outputs), None)
    if soft is None or not unit(soft.type).loss_reads_input or not _converts_half(tensors, cast):
        return
    x, probs = soft.inputs[0], soft.outputs[0]
    x32 = _unique(tensors, f"{x}.f32")
    tensors[x32] = Tensor(x32, tensors[x].shape, "float32")
    del tensors[probs]
    for made in inserted.values():
        if probs in made:
            made.remove(probs)
    ops.remove(cast)
    ops.insert(ops.index(soft), Op(cast.name, "cast", [x], [x32]))
    soft.inputs, soft.outputs = [x32], [out_name]
    inserted.setdefault(x, []).append(x32)


def _converts_half(tensors: dict, op: Op) -> bool:
    return tensors[op.inputs[0]].dtype == "float16" and tensors[op.outputs[0]].dtype == "float32"


def _converts(graph: Graph, op: Op) -> bool:
    """The op converts between int8 and float32 (a QUANTIZE or DEQUANTIZE at an int8 model's edge)."""
    dts = {graph.tensors[op.inputs[0]].dtype, graph.tensors[op.outputs[0]].dtype}
    return dts == {"int8", "float32"}


def head_start(graph: Graph, scheme) -> int:
    """The index of the first op the bound scheme trains: ops from there on are the head."""
    for i, op in enumerate(graph.ops):
        if scheme.trains(op.name):
            return i
    raise TinyTrainError(f"training scheme {scheme.name!r} trains no layer of {graph.name!r}")


def float_head(graph: Graph, scheme, half: bool) -> Graph:
    """An int8 graph whose head (the ops from the first one `scheme` trains on) computes in
    float: FP16 when `half` (fp16 / mixed), else FP32. The frozen int8 part is untouched; each
    int8 activation the head reads from it is dequantized at the boundary (a `dequantize` op,
    then for FP16 a `cast`); the head's weights and biases become their real values (rounded
    to half for FP16); a final DEQUANTIZE of the head's output becomes a cast to float32 (FP16)
    or goes (FP32); the graph's output is float32 either way."""
    from .ops import unit
    start = head_start(graph, scheme)
    head, frozen = graph.ops[start:], graph.ops[:start]
    fdt = "float16" if half else "float32"
    np_f = np.float16 if half else np.float32
    head_names = {op.name for op in head}
    produced_frozen = {t for op in frozen for t in op.outputs} | set(graph.inputs)
    out_name = graph.outputs[0]
    last = graph.producer(out_name)
    drop_final = last is not None and last.name in head_names and _converts(graph, last)
    for op in head:
        if _converts(graph, op) and not (drop_final and op is last):
            raise UnsupportedError(op.name, f"{op.type} inside the trained head of an int8 model")
        if half and not unit(op.type).float16:
            raise UnsupportedError(op.name, f"{op.type} in float16 (the FP16 head of an int8 model)")
        if not half and not unit(op.type).float32:
            raise UnsupportedError(op.name, f"{op.type} in float32 (the float head of an int8 model)")
    tensors = dict(graph.tensors)
    head_acts, head_consts = [], []
    for op in head:
        if drop_final and op is last:
            continue
        for name in op.inputs:
            t = graph.tensors[name]
            if t.is_const and name not in head_consts:
                head_consts.append(name)
        for name in op.outputs:
            head_acts.append(name)
    # the head's constants: real values (a weight's bias is quantized with the weight's scale
    # times its input's, which the importer records on the bias tensor)
    for name in head_consts:
        t = graph.tensors[name]
        if t.dtype in ("int8", "int32"):
            if t.quant is None:
                raise UnsupportedError(name, f"{t.dtype} constant without quantization in the trained head")
            data = real_values(t)
        else:
            data = np.asarray(t.data, np.float64)
        tensors[name] = Tensor(name, t.shape, fdt, None, data.astype(np.float32).astype(np_f))
    for name in head_acts:
        t = graph.tensors[name]
        dt = "float32" if name == out_name else fdt
        tensors[name] = Tensor(name, t.shape, dt)
    # the boundary: int8 activations of the frozen part that the head reads
    boundary: dict[str, str] = {}
    new_ops = [Op(o.name, o.type, list(o.inputs), list(o.outputs), dict(o.attrs)) for o in frozen]   # the caller's stay
    inserted: dict[str, list[str]] = {}
    for op in head:
        for name in op.inputs:
            t = graph.tensors[name]
            if t.is_const or name not in produced_frozen or name in boundary:
                continue
            if t.dtype == fdt or (t.dtype == "float32" and not half):
                boundary[name] = name
                continue
            made = []
            if t.dtype == "int8":
                real = _unique(tensors, f"{name}.real")
                tensors[real] = Tensor(real, t.shape, "float32")
                new_ops.append(Op(_unique_op(graph, f"{name}_dequantize"), "dequantize", [name], [real]))
                made.append(real)
            elif t.dtype == "float32":
                real = name
            else:
                raise UnsupportedError(op.name, f"a {t.dtype} input {name!r} of the trained head")
            if half:
                h = _unique(tensors, f"{name}.f16")
                tensors[h] = Tensor(h, t.shape, "float16")
                new_ops.append(Op(_unique_op(graph, f"{name}_to_f16"), "cast", [real], [h]))
                made.append(h)
                real = h
            boundary[name] = real
            inserted[name] = made
    for op in head:
        inputs = [boundary.get(t, t) for t in op.inputs]
        if drop_final and op is last:
            if half:
                new_ops.append(Op(op.name, "cast", inputs, list(op.outputs)))
            else:          # the head's last op writes the output itself
                for prev in new_ops:
                    prev.outputs = [out_name if t == inputs[0] else t for t in prev.outputs]
                    prev.inputs = [out_name if t == inputs[0] else t for t in prev.inputs]
                tensors.pop(inputs[0], None)
            continue
        new_ops.append(Op(op.name, op.type, inputs, list(op.outputs), dict(op.attrs)))
    if not drop_final and half:           # an int8 output without a DEQUANTIZE: cast the half
        h = _unique(tensors, f"{out_name}.f16")
        tensors[h] = Tensor(h, graph.tensors[out_name].shape, "float16")
        for op in new_ops:
            op.outputs = [h if t == out_name else t for t in op.outputs]
            op.inputs = [h if t == out_name else t for t in op.inputs]
        new_ops.append(Op(_unique_op(graph, f"{out_name}_to_f32"), "cast", [h], [out_name]))
        inserted.setdefault(out_name, []).append(h)
    if half:                 # a final softmax stays float32 after the cast (to_float16)
        _softmax_after_cast(new_ops, tensors, inserted, out_name, graph)
    # schedule order of tensors (the planner walks activations in dict order): new tensors
    # right after the one they come from; the output last
    ordered: dict[str, Tensor] = {}
    for name in graph.tensors:
        if name not in tensors or name == out_name:
            continue
        ordered[name] = tensors[name]
        for made in inserted.get(name, []):
            ordered[made] = tensors[made]
    for made in inserted.get(out_name, []):
        ordered[made] = tensors[made]
    ordered[out_name] = tensors[out_name]
    return Graph(graph.name, ordered, new_ops, list(graph.inputs), list(graph.outputs),
                 dict(graph.layer_names)).validate()
