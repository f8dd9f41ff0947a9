"""The graph IR: tensors and ops, in schedule order.

Layouts (converted once, by the frontends, at import):
  activations        NHWC with N = 1 (rank 4), or (1, features) after a flatten (rank 2)
  conv2d weights     OHWI   (out_channels, kh, kw, in_channels)
  depthwise weights  HWC    (kh, kw, channels); depth multiplier 1 only
  fully_connected    OI     (out_features, in_features)
  biases             (out_channels,), int32 for int8 graphs, float32 for float graphs

Quantization: int8 tensors carry `QuantParams`: scale (float64 array) and zero point
(int array), one entry per tensor, or one per channel along `axis` (weights: axis 0 for
conv2d/fully_connected, axis 2 for depthwise). Weights are symmetric (zero point 0).
Biases of int8 ops are int32 with scale input_scale * weight_scale and zero point 0.

Ops and their attributes:
  conv2d, depthwise_conv2d   inputs [x, weight, bias]; stride (sh, sw); pad (top, bottom,
                             left, right); dilation (dh, dw); activation
  fully_connected            inputs [x, weight, bias]; activation
  add                        inputs [a, b]; activation
  avg_pool2d, max_pool2d     inputs [x]; kernel (kh, kw); stride; pad; activation
  global_avg_pool            inputs [x]; output (1, 1, 1, C)
  relu, relu6                inputs [x] (standalone)
  reshape                    inputs [x]; output shape is the op's output tensor shape
  softmax                    inputs [x]; beta
  pad                        inputs [x]; pad (top, bottom, left, right)
  quantize                   inputs [x float32] -> int8
  dequantize                 inputs [x int8] -> float32
  pointwise_depthwise_conv2d a 1x1 conv2d feeding a depthwise_conv2d, run as one op
                             (tinytrain.passes.fuse_pw_dw): inputs [x, w_pw, b_pw, w_dw, b_dw];
                             stride, pad, dilation, activation of the depthwise; pw_activation;
                             intermediate: the tensor between the two (quant params only, its
                             arena bytes are the op's row ring, see passes.scratch_bytes);
                             pw_name, dw_name: the original layer names
Memory-pass attributes (tinytrain.passes): "scratch" names a non-constant tensor used as
the op's scratch memory during that op only; "inplace" (depthwise_conv2d) marks a kernel
that may write its output over its input.
`activation` is one of "none", "relu", "relu6" (fused; for int8 the clamp bounds follow
from the output quantization exactly as TFLite computes them).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import TinyTrainError

OP_TYPES = (
    "conv2d", "depthwise_conv2d", "fully_connected", "add",
    "avg_pool2d", "max_pool2d", "global_avg_pool",
    "relu", "relu6", "reshape", "softmax", "pad", "quantize", "dequantize",
    "pointwise_depthwise_conv2d",
)
ACTIVATIONS = ("none", "relu", "relu6")
DTYPES = ("int8", "int32", "float32")
DTYPE_BYTES = {"int8": 1, "int32": 4, "float32": 4}
NP_DTYPES = {"int8": np.int8, "int32": np.int32, "float32": np.float32}


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
        if self.type not in OP_TYPES:
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
            h.update(repr((op.type, op.inputs, op.outputs, sorted(op.attrs.items()))).encode())
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
    out = graph.tensors[op.outputs[0]]
    if op.type == "conv2d":
        w = graph.tensors[op.inputs[1]]
        _, kh, kw, cin = w.shape
        return out.size * kh * kw * cin
    if op.type == "depthwise_conv2d":
        w = graph.tensors[op.inputs[1]]
        kh, kw, _ = w.shape
        return out.size * kh * kw
    if op.type == "fully_connected":
        w = graph.tensors[op.inputs[1]]
        return int(w.shape[0] * w.shape[1])
    if op.type == "pointwise_depthwise_conv2d":
        mid = graph.tensors[op.attrs["intermediate"]]
        kh, kw, _ = graph.tensors[op.inputs[3]].shape
        return mid.size * graph.tensors[op.inputs[1]].shape[-1] + out.size * kh * kw
    return 0


def graph_macs(graph: Graph) -> int:
    return sum(op_macs(graph, op) for op in graph.ops)
