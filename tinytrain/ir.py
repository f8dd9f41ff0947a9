"""The graph IR: tensors and ops, in schedule order.

Layouts (converted once, by the frontends, at import):
  activations        NHWC with N = 1 (rank 4), or (1, features) after a flatten (rank 2)
  conv2d weights     OHWI   (out_channels, kh, kw, in_channels)
  depthwise weights  HWC    (kh, kw, channels); depth multiplier 1 only
  fully_connected    OI     (out_features, in_features)
  biases             (out_channels,), int32 for int8 graphs, float32 for float graphs
                     (float16 for a graph compiled with precision fp16 / mixed, tinytrain.precision)

Quantization: int8 tensors carry `QuantParams`: scale (float64 array) and zero point
(int array), one entry per tensor, or one per channel along `axis` (weights: axis 0 for
conv2d/fully_connected, axis 2 for depthwise). Weights are symmetric (zero point 0).
Biases of int8 ops are int32 with scale input_scale * weight_scale and zero point 0.

Ops: an Op names its type, input and output tensors and attributes; what each op type
means (attributes, operands, references, gradients, C) is its unit in tinytrain/ops/
(`tinytrain.ops.unit(op.type)`), and Graph.validate runs every unit's checks. Attribute
`activation` is one of "none", "relu", "relu6" (fused; for int8 the clamp bounds follow from
the output quantization exactly as TFLite computes them).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dtypes as _dtypes
from .errors import TinyTrainError

ACTIVATIONS = ("none", "relu", "relu6")
ACT_CODES = {"none": 0, "relu": 1, "relu6": 2}     # the float kernels' `act` argument
# Op attributes that record how a board runs the op (tinytrain.passes.select_kernels), not
# what it computes: the model hash (Graph.fingerprint) leaves them out.
BOARD_ATTRS = frozenset({"variant"})
DTYPES = ("int8", "int32", "float32", "float16")   # the dtypes a graph may hold (see tinytrain.dtypes)
DTYPE_BYTES = {n: _dtypes.DTYPES[n].nbytes for n in DTYPES}
NP_DTYPES = {n: _dtypes.DTYPES[n].numpy for n in DTYPES}


@dataclass
class QuantParams:
    scale: np.ndarray          # float64, shape (1,) or (channels,)
    zero_point: np.ndarray     # int64, same shape as scale
    axis: int | None = None    # per-channel axis, None when per-tensor

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float64))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))
        if self.zero_point.shape != self.scale.shape:
            self.zero_point = np.broadcast_to(self.zero_point, self.scale.shape).copy()

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int) -> "QuantParams":
        return cls(np.array([scale]), np.array([zero_point]))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = None     # constants only (weights, biases)

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.dtype not in DTYPES:
            raise TinyTrainError(f"tensor {self.name!r}: unsupported dtype {self.dtype!r}")

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES[self.dtype]

    @property
    def scale(self) -> float:
        """Per-tensor scale (error if per-channel)."""
        assert self.quant is not None and not self.quant.per_channel, self.name
        return float(self.quant.scale[0])

    @property
    def zero_point(self) -> int:
        assert self.quant is not None and not self.quant.per_channel, self.name
        return int(self.quant.zero_point[0])


@dataclass
class Op:
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        from .ops import op_types
        if self.type not in op_types():
            raise TinyTrainError(f"layer {self.name!r}: unsupported op {self.type!r}")
        act = self.attrs.get("activation", "none")
        if act not in ACTIVATIONS:
            raise TinyTrainError(f"layer {self.name!r}: unsupported activation {act!r}")


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]                  # schedule order (topologically sorted)
    inputs: list[str]
    outputs: list[str]
    # the source model's layer names where the IR names its op otherwise (e.g. Keras "conv2"
    # -> "conv2_1_Relu" after TFLite's conversion): what a user may call a layer in a scheme
    layer_names: dict[str, str] = field(default_factory=dict)

    # --- queries -----------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producer(self, tensor_name: str) -> Op | None:
        for op in self.ops:
            if tensor_name in op.outputs:
                return op
        return None

    def consumers(self, tensor_name: str) -> list[Op]:
        return [op for op in self.ops if tensor_name in op.inputs]

    def activations(self) -> list[Tensor]:
        """Non-constant tensors: graph inputs, intermediate values and outputs."""
        return [t for t in self.tensors.values() if not t.is_const]

    def constants(self) -> list[Tensor]:
        return [t for t in self.tensors.values() if t.is_const]

    @property
    def is_quantized(self) -> bool:
        """True for an int8 graph (int8 activations between the edges)."""
        return any(self.tensors[o].dtype == "int8" for op in self.ops for o in op.outputs)

    def fingerprint(self) -> str:
        """A short hash of structure and constants: the model hash firmware reports."""
        h = hashlib.sha256()
        for op in self.ops:
            attrs = sorted((k, v) for k, v in op.attrs.items() if k not in BOARD_ATTRS)
            h.update(repr((op.type, op.inputs, op.outputs, attrs)).encode())
        for name in sorted(self.tensors):
            t = self.tensors[name]
            h.update(repr((name, t.shape, t.dtype)).encode())
            if t.quant is not None:
                h.update(t.quant.scale.tobytes())
                h.update(t.quant.zero_point.tobytes())
            if t.data is not None:
                h.update(np.ascontiguousarray(t.data).tobytes())
        return h.hexdigest()[:16]

    # --- checks --------------------------------------------------------------------
    def validate(self) -> "Graph":
        """Check the graph is well formed; raise TinyTrainError naming the layer if not."""
        defined = set(self.inputs) | {t.name for t in self.constants()}
        for name in self.inputs:
            if name not in self.tensors:
                raise TinyTrainError(f"graph input {name!r} is not a tensor of the graph")
        seen_ops = set()
        for op in self.ops:
            if op.name in seen_ops:
                raise TinyTrainError(f"layer {op.name!r}: duplicate layer name")
            seen_ops.add(op.name)
            for t in op.inputs:
                if t not in self.tensors:
                    raise TinyTrainError(f"layer {op.name!r}: input tensor {t!r} does not exist")
                if t not in defined:
                    raise TinyTrainError(f"layer {op.name!r}: input {t!r} is used before it is computed")
            for t in op.outputs:
                if t not in self.tensors:
                    raise TinyTrainError(f"layer {op.name!r}: output tensor {t!r} does not exist")
                if t in defined:
                    raise TinyTrainError(f"layer {op.name!r}: output {t!r} is written twice")
                defined.add(t)
        for name in self.outputs:
            if name not in defined:
                raise TinyTrainError(f"graph output {name!r} is never computed")
        from .ops import unit
        for op in self.ops:
            unit(op.type).check(self, op)
        return self

    def summary(self) -> str:
        lines = [f"graph {self.name}: {len(self.ops)} ops"]
        for op in self.ops:
            shapes = " ".join(str(self.tensors[t].shape) for t in op.outputs)
            lines.append(f"  {op.name:24s} {op.type:18s} -> {shapes}")
        return "\n".join(lines)


# --- helpers frontends share ---------------------------------------------------------

def same_padding(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TensorFlow SAME padding: (out_size, pad_before, pad_after)."""
    eff_k = (kernel - 1) * dilation + 1
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + eff_k - in_size, 0)
    return out, total // 2, total - total // 2


def conv_out_size(in_size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                  dilation: int = 1) -> int:
    eff_k = (kernel - 1) * dilation + 1
    return (in_size + pad_before + pad_after - eff_k) // stride + 1


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one forward op (0 for ops that do none)."""
    from .ops import unit
    return unit(op.type).macs(graph, op)


def graph_macs(graph: Graph) -> int:
    return sum(op_macs(graph, op) for op in graph.ops)
