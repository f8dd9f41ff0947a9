"""What an op unit is: everything tinytrain knows about one op type, in one class.

A unit (one module under tinytrain/ops/, registered in tinytrain/ops/__init__.py) gives:

  graph facts      `attrs` (defaults), `check` (attributes, operand dtypes/shapes; raises
                   UnsupportedError naming the layer), `output_shape`, `macs`
  int8 parameters  `params` (fixed-point numbers, computed with tinytrain.quant's helpers)
  references       `ref_s8` / `ref_f32`: numpy, one op on its input arrays (int8 bit-exact
                   with LiteRT's reference kernels and with the C kernels)
  C forward        `emit`: the kernel call(s) of the forward step (tinytrain.cgen.Emitter)
  training facts   `clamp` (int8 output clamp whose derivative is a 1-bit mask),
                   `activation` (float activation masked the same way), `backward_reads`
                   (forward tensors the input gradient needs in full), `frozen_only`
  VJP              `vjp`: numpy gradients of the inputs (and of weight/bias for weighted
                   ops), on real values
  C backward       `emit_backward`: the backward step's kernel calls

Weighted ops (conv2d, depthwise_conv2d, fully_connected) share their training logic in
tinytrain/ops/weighted.py. Defaults below cover elementwise ops with no parameters.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Graph, Op, Tensor


# Attributes any op may carry: memory-pass marks, the kernel variant chosen for the board
# (tinytrain.passes.select_kernels), and where a layer came from (frontends).
META_ATTRS = {"scratch", "inplace", "variant", "conv_index", "role", "keras_name",
              "f16_variant"}     # tinytrain.precision: the float16 kernel variant the board runs


class OpUnit:
    type: ClassVar[str] = ""
    summary: ClassVar[str] = ""                 # one line, for docs/ops.md
    attrs: ClassVar[dict[str, Any]] = {}        # attribute -> default
    weighted: ClassVar[bool] = False            # inputs [x, weight, bias]: trainable parameters
    frozen_only: ClassVar[bool] = False         # no backward: allowed only where no gradient flows
    aliases_input: ClassVar[bool] = False       # the output is a view of the input's bytes (reshape)
    channelwise: ClassVar[bool] = False         # output channel c depends on input channel(s) c only
    classifier: ClassVar[bool] = False          # may be a model's classifier (the last weighted op:
                                                # schemes' "classifier", --num-classes replaces it)
    loss_reads_input: ClassVar[bool] = False    # as the graph's last op, cross-entropy reads its
                                                # input (the logits of a final softmax)
    int8: ClassVar[bool] = True                 # has an int8 form
    float32: ClassVar[bool] = True              # has a float32 form
    update_channel_first: ClassVar[bool] = False  # the fused weight update visits the weight
                                                # channel by channel (depthwise), not row-major
    float16: ClassVar[bool] = False             # has a float16 form (ref_f16, _f16 kernels):
                                                # precision fp16 / mixed (tinytrain.precision)
    tflite_ops: ClassVar[tuple[str, ...]] = ()  # TFLite builtin operators this unit imports
    tflite_inputs: ClassVar[int] = 1            # inputs those operators must have
    keras_layers: ClassVar[tuple[str, ...]] = ()       # Keras layer classes this unit imports (float)
    keras_inputs: ClassVar[int | None] = 1             # inputs those layers take (None: any number)
    keras_activations: ClassVar[tuple[str, ...]] = ()  # Keras activation names that are this op
    keras_ops: ClassVar[tuple[str, ...]] = ()          # Keras 3 operation classes (keras.ops nodes
                                                       # of a functional model: `x + 3.0`)

    # --- graph facts --------------------------------------------------------------------
    def check(self, g: Graph, op: Op) -> None:
        """Validate attributes and operands; raise UnsupportedError naming the layer."""
        unknown = set(op.attrs) - set(self.attrs) - META_ATTRS
        if unknown:
            raise UnsupportedError(op.name, f"{op.type} attribute(s) {sorted(unknown)}")

    def attr(self, op: Op, name: str):
        return op.attrs.get(name, self.attrs.get(name))

    def macs(self, g: Graph, op: Op) -> int:
        return 0

    def requant_table_bytes(self, g: Graph, op: Op) -> int:
        """Bytes of per-channel requantization tables of the int8 op (multiplier + shift)."""
        return 0

    def output_shape(self, g: Graph, op: Op) -> tuple[int, ...] | None:
        """The output's IR shape from the inputs' shapes and the attributes: what the .tflite
        reader uses where the file leaves dimensions to run time (downstream of a dynamic-batch
        nearest UpSampling2D). None: this unit cannot tell (the reader then refuses)."""
        return None

    def scratch_bytes(self, g: Graph, op: Op) -> int:
        """Arena bytes of the op's scratch (attrs["scratch"], a memory pass), live during the op."""
        name = op.attrs.get("scratch")
        return g.tensors[name].nbytes if name else 0

    def simd_kernel(self, g: Graph, op: Op) -> str | None:
        """The reference kernel (e.g. "tt_conv2d_s8") whose optimised variants (`_dsp`, `_mve`)
        this op's `emit` can call, with their extra arguments; None: emit calls no variant.
        tinytrain.passes.select_kernels records the variant chosen as attrs["variant"]."""
        return None

    def kernel_scratch_bytes(self, g: Graph, op: Op) -> int:
        """Arena bytes the chosen variant (attrs["variant"]) needs beside the op's tensors and
        its `scratch` (an im2col row, ...), live during the op only; 0 for none."""
        return 0

    def channel_params(self, g: Graph, op: Op) -> dict[str, int]:
        """Constant tensors with one entry per channel of a channelwise op, and that axis
        (they follow a permutation of its channels)."""
        return {}

    def is_int8(self, g: Graph, op: Op) -> bool:
        """The op computes in int8 (its first input is int8)."""
        return g.tensors[op.inputs[0]].dtype == "int8"

    # --- int8 parameters ------------------------------------------------------------------
    def params(self, g: Graph, op: Op) -> dict:
        return {}

    # --- numpy references -----------------------------------------------------------------
    def ref_s8(self, g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
        raise UnsupportedError(op.name, f"int8 {op.type}")

    def ref_f32(self, g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
        raise UnsupportedError(op.name, f"float32 {op.type}")

    def ref_f16(self, g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
        """float16 operands -> float16 output, bit for bit as the op's _f16 C kernel (the
        variant the board runs: `g.f16_variant`; tinytrain/ops/f16.py)."""
        raise UnsupportedError(op.name, f"float16 {op.type}")

    def run(self, g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
        """The reference on the op's input arrays (constants included), shaped as its output."""
        out = g.tensors[op.outputs[0]]
        dt = g.tensors[op.inputs[0]].dtype
        ref = self.ref_s8 if dt == "int8" else self.ref_f16 if dt == "float16" else self.ref_f32
        return np.asarray(ref(g, op, args)).reshape(out.shape)

    # --- import -------------------------------------------------------------------------
    def from_tflite(self, r, name: str, kind: str, op, ins: list[int], outs: list[int]):
        """The IR op(s) of a TFLite operator `kind` (one of tflite_ops). `r` is the .tflite
        reader (tinytrain.frontends.tflite.TfliteReader: activation(), weight(), bias(),
        options(), fused(), const_values(), ...); `ins`/`outs` are the file's tensor indices."""
        raise UnsupportedError(name, f"op {kind}")

    def from_keras(self, imp, layer, ins, outs, cfg: dict) -> None:
        """Import a Keras layer (one of keras_layers) of a float model. `imp` is the importer
        (tinytrain.frontends.keras.KerasImporter: input(), emit(), alias(), new_tensor(),
        fused_activation(), conv_padding(), check_channels_last(), ...)."""
        raise UnsupportedError(layer.name, f"layer type {type(layer).__name__}")

    def from_keras_op(self, imp, operation, operands: list, outs) -> None:
        """Import a Keras 3 operation node (one of keras_ops) of a float model: `operands` are
        its positional arguments, KerasTensors or constants; `imp.operand(operation, v)` gives
        the IR tensor of either."""
        raise UnsupportedError(operation.name, f"operation {type(operation).__name__}")

    def from_keras_activation(self, imp, layer, x: str, out_kt, suffix: str = "") -> None:
        """This op as a Keras activation applied to tensor `x` (an Activation layer, or a
        layer's `activation=`)."""
        imp.emit(layer, self.type, [x], out_kt, dict(self.attrs), shape=imp.tensors[x].shape, suffix=suffix)

    # --- C forward ------------------------------------------------------------------------
    def emit(self, em, op: Op) -> list[str]:
        raise UnsupportedError(op.name, f"{op.type} in code generation")

    # --- training facts --------------------------------------------------------------------
    def clamp(self, g: Graph, op: Op) -> tuple[int, int] | None:
        """The int8 output clamp (act_min, act_max): where the output sits on it the gradient
        is 0 (a 1-bit mask in int8 training). None: no clamp."""
        return None

    def activation(self, op: Op) -> str:
        """The float activation applied to the output ("none", "relu", "relu6")."""
        return op.attrs.get("activation", "none")

    def backward_unsupported(self, g: Graph, op: Op) -> str | None:
        """Why this op (with these operands) cannot sit where a gradient flows, or None. The
        training program refuses such an op in a trained part, naming the layer."""
        return None

    def backward_reads(self, g: Graph, op: Op) -> dict[str, str]:
        """Forward tensors the input gradient reads in full: role -> tensor ("x", "y")."""
        return {}

    # --- VJP ---------------------------------------------------------------------------------
    def vjp(self, ctx, op: Op, dy: np.ndarray, step) -> tuple[dict, dict]:
        """({input activation: gradient}, {parameter: gradient}) of one backward step, on
        real values (float32), given dy, the gradient of the output after its mask. Only the
        activations in step.grad_inputs get a gradient. `ctx.real(name)` is the real value
        of a forward tensor or parameter."""
        raise UnsupportedError(op.name, f"backward of {op.type}")

    def emit_backward(self, em, op: Op, step, t) -> list[str]:
        """The backward step's C (after the generic mask of the output gradient); `t` is the
        training emission context (tinytrain.training.emit.TrainEmit)."""
        raise UnsupportedError(op.name, f"backward of {op.type} in C")

    def emit_pass_through(self, em, op: Op, step, t) -> list[str]:
        """d input = d output, for every input that needs a gradient (elementwise ops after
        their mask, reshape, quantize): a copy, an add, or nothing when the bytes are shared."""
        lines = []
        n = em.graph.tensors[op.outputs[0]].size
        gy = t.grad(step.grad_out)
        for x, gx in step.grad_inputs.items():
            if t.same_bytes(gx, step.grad_out):
                continue      # a reshape's gradient is a view of the same arena bytes
            if step.accumulate[x]:       # half: one rounding of old + g (tt_add_grad_f16)
                lines.append(em.call(em.kernel("tt_add_grad_f16") if t.half else "tt_add_grad_f32",
                                     t.grad(gx), gy, n))
            else:
                lines.append(f"memcpy({t.grad(gx)}, {gy}, {(2 if t.half else 4) * n});")
        return lines


def act_tensors(g: Graph, op: Op) -> tuple[Tensor, Tensor]:
    """(first input, output) tensors of an op."""
    return g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]


def input_shape(g: Graph, op: Op) -> tuple[int, ...]:
    """output_shape of elementwise ops: the first input's shape."""
    return g.tensors[op.inputs[0]].shape


def expect_rank4(g: Graph, op: Op, tensor: str) -> None:
    t = g.tensors[tensor]
    if len(t.shape) != 4:
        raise UnsupportedError(op.name, f"{op.type} of a rank-{len(t.shape)} tensor {tensor!r} (NHWC expected)")


def same_dtype(g: Graph, op: Op) -> None:
    """Every activation operand and the output share one dtype."""
    dts = {g.tensors[t].dtype for t in op.outputs} | {
        g.tensors[t].dtype for t in op.inputs if not g.tensors[t].is_const}
    if len(dts) != 1:
        raise UnsupportedError(op.name, f"{op.type} mixing dtypes {sorted(dts)}")


def hwc_of(v: np.ndarray, op: Op) -> np.ndarray:
    """An activation array (1, H, W, C) -> (H, W, C)."""
    if v.ndim != 4 or v.shape[0] != 1:
        raise TinyTrainError(f"layer {op.name!r}: {op.type} expects a (1, H, W, C) input, got {v.shape}")
    return v[0]
