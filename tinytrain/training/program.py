"""The training program: one training step as a list of steps over named buffers.

    forward steps (schedule order; each may also write a 1-bit mask of its output and
                   the first channels of a tensor the backward needs, "save" steps)
    loss          gradient of the loss w.r.t. the logits (or the graph output)
    backward steps in reverse schedule order, each: grad input(s) with the OLD weights,
                   then the weight gradient and the bias gradient applied in place at
                   once (SGD / QAS), so no gradient buffer outlives its layer

Pruning follows from `requires_grad`: a tensor needs a gradient only when a trained
parameter lies upstream of it, so no input gradient is computed below the earliest
trained layer, and the backward of a layer whose output needs no gradient is not emitted.
Only what the backward reads is kept: the trained input channels of a layer whose
weight is trained, the input of a max pool, the output of a mid-graph softmax; the
relu/relu6/int8-clamp derivatives are read from 1-bit masks the forward writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dtypes import nbytes as dtype_nbytes
from ..errors import TinyTrainError, UnsupportedError
from ..ir import Graph, Op, op_macs
from ..ops import unit
from ..passes import kernel_scratch, scratch_tensors
from .qas import check_trainable_bias
from .scheme import LayerUpdate, Scheme, bind_scheme

LOSSES = ("softmax_cross_entropy", "mse")


@dataclass
class Buffer:
    """A buffer of the training step in the arena (parameters are not buffers)."""
    name: str
    shape: tuple[int, ...]
    dtype: str           # int8 | int32 | float32 | bits
    kind: str            # activation | saved | mask | gradient | scratch
    alias_of: str | None = None    # shares the memory of another buffer (reshape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return dtype_nbytes(self.dtype, self.size)


@dataclass
class ForwardStep:
    op: str
    mask: str | None = None            # writes this 1-bit mask of its output
    saves: list[tuple[str, str, int]] = field(default_factory=list)   # (tensor, saved buffer, channels)


@dataclass
class LossStep:
    loss: str
    logits: str                        # tensor the loss reads
    grad: str                          # gradient buffer it writes


@dataclass
class BackwardStep:
    op: str
    grad_out: str                                          # gradient of the op's output
    grad_inputs: dict[str, str] = field(default_factory=dict)   # input tensor -> its gradient buffer
    accumulate: dict[str, bool] = field(default_factory=dict)   # add into an already-written gradient
    mask: str | None = None                                # mask of the op's own output
    saved: dict[str, str] = field(default_factory=dict)    # role ("x", "y") -> buffer read
    update: LayerUpdate | None = None                      # in-place weight / bias update
    scratch: str | None = None                             # per-output-channel weight gradient

    @property
    def computes_weight_grad(self) -> bool:
        return self.update is not None and self.update.weight

    @property
    def computes_bias_grad(self) -> bool:
        return self.update is not None and self.update.bias

    def channel_index(self):
        """The explicit input channels the weight update trains (reorder fallback), or None."""
        u = self.update
        if u is None or not u.weight or u.channel_index is None:
            return None
        import numpy as np
        return np.asarray(u.channel_index, dtype=np.int64)

    def trained_in_channels(self, full: int) -> int:
        """Input channels of the weight this step trains (of `full`)."""
        u = self.update
        if u.channel_index is not None:
            return len(u.channel_index)
        return u.in_channels if u.in_channels is not None else full


@dataclass
class TrainingProgram:
    graph: Graph
    scheme: Scheme
    loss: str
    quantized: bool                    # int8 graph: QAS updates of int8 weights / int32 biases
    momentum: bool
    update: str                        # update mode of int8/int32 parameters (qas.UPDATE_MODES), "float"
    update_seed: int                   # the stochastic mode's compiled-in PRNG seed
    buffers: dict[str, Buffer]
    tensor_buffer: dict[str, str]      # forward tensor -> its buffer (reshape aliases)
    forward: list[ForwardStep]
    loss_step: LossStep
    backward: list[BackwardStep]
    requires_grad: set[str]
    precision: str = "fp32"            # fp32 | fp16 | mixed (tinytrain.precision)
    loss_scale: float = 1.0            # half precision: the initial loss scale
    dynamic_loss_scale: bool = False   # lower it on overflow (skipping the rest of the step), raise it
    loss_scale_interval: int = 1000    # after this many steps without overflow

    @property
    def half(self) -> bool:
        """Half-precision parameters and gradients (precision fp16 / mixed)."""
        return self.precision in ("fp16", "mixed")

    # --- queries used by the memory plan, simulation and code generator ----------------
    @property
    def shadow(self) -> bool:
        """The fp32 shadow update mode."""
        return self.update == "shadow"

    def check_momentum(self, momentum: float) -> None:
        """A momentum > 0 updates momentum buffers, which only a program built with them has."""
        if momentum and not self.momentum:
            raise TinyTrainError("momentum > 0 needs a program built with momentum=True (its state)")

    def steps(self) -> list:
        return [*self.forward, self.loss_step, *self.backward]

    def backward_step(self, op_name: str) -> BackwardStep | None:
        return next((b for b in self.backward if b.op == op_name), None)

    def grad_buffers(self) -> list[Buffer]:
        return [b for b in self.buffers.values() if b.kind == "gradient"]

    def macs(self) -> dict[str, int]:
        """Multiply-accumulates of one step: forward, backward input grads, weight grads."""
        g = self.graph
        fwd = sum(op_macs(g, op) for op in g.ops)
        gin = gw = 0
        for b in self.backward:
            op = _op(g, b.op)
            m = op_macs(g, op)
            if unit(op.type).weighted:
                if b.grad_inputs:
                    gin += m
                if b.computes_weight_grad:
                    gw += m * trained_in_channels(g, op, b.update) // _in_channels(g, op)
        return {"forward": fwd, "grad_input": gin, "grad_weight": gw, "total": fwd + gin + gw}


def trained_in_channels(graph: Graph, op: Op, u: LayerUpdate) -> int:
    if u.channel_index is not None:
        return len(u.channel_index)
    return u.in_channels if u.in_channels is not None else _in_channels(graph, op)


def _in_channels(graph: Graph, op: Op) -> int:
    return unit(op.type).in_channels(graph, op)


def _op(graph: Graph, name: str) -> Op:
    return next(op for op in graph.ops if op.name == name)


def _act_inputs(graph: Graph, op: Op) -> list[str]:
    return [t for t in op.inputs if not graph.tensors[t].is_const]


def _has_mask(graph: Graph, op: Op, quantized: bool) -> bool:
    """int8: the output clamp's derivative; float: the activation's (1-bit masks)."""
    u = unit(op.type)
    if quantized:
        return u.clamp(graph, op) is not None
    return u.activation(op) != "none"


def build_program(graph: Graph, scheme, loss: str = "softmax_cross_entropy",
                  momentum: bool = False, shadow: bool = False, update: str | None = None,
                  update_seed: int | None = None, precision: str = "fp32", loss_scale: float | str = 1.0,
                  loss_scale_interval: int = 1000) -> TrainingProgram:
    """Build the pruned, in-place-ordered training step of `graph` under `scheme`
    (a Scheme, a SchemeSpec or the text of --train). `update`: how int8/int32 parameters
    keep the part of a step below one quantization step (qas.UPDATE_MODES; None: the
    default); `shadow=True` is `update="shadow"`."""
    from .qas import DEFAULT_UPDATE_SEED, resolve_update
    if shadow:
        if update not in (None, "shadow"):
            raise TinyTrainError(f"shadow=True and update={update!r} contradict each other")
        update = "shadow"
    if loss not in LOSSES:
        raise TinyTrainError(f"unknown loss {loss!r}: expected one of {', '.join(LOSSES)}")
    if not isinstance(scheme, Scheme):
        scheme = bind_scheme(scheme, graph)
    if not scheme.layers:
        raise TinyTrainError(f"training scheme {scheme.name!r} trains no parameter of {graph.name!r}")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinyTrainError(f"model {graph.name!r}: training needs one input and one output")
    # int8 training (QAS) when the trained layers are int8; an int8 model with a float head
    # (tinytrain.precision.float_head) trains float layers behind its frozen int8 part
    quantized = graph.is_quantized and any(
        graph.tensors[op.inputs[0]].dtype == "int8" for op in graph.ops if scheme.trains(op.name))
    from ..precision import check_precision
    check_precision(precision)
    half = any(t.dtype == "float16" for t in graph.tensors.values())
    if half != (precision in ("fp16", "mixed")):
        raise TinyTrainError(f"precision {precision} on a graph {'with' if half else 'without'} float16 tensors "
                             "(tinytrain.compile converts the graph: pass precision= there)")
    dynamic = loss_scale == "dynamic"
    scale = 2.0 ** 16 if dynamic else float(loss_scale)    # dynamic: from the top (at most 2^16)
    if not (scale > 0 and np.isfinite(scale) and np.log2(scale) == round(np.log2(scale))):
        raise TinyTrainError(f"loss scale {loss_scale!r}: a power of two (e.g. 1, 1024) or 'dynamic'")
    if scale != 1.0 and not half:
        raise TinyTrainError("loss scaling is for precision fp16 / mixed")
    if half and update not in (None, "float", "master"):
        raise TinyTrainError(f"--update {update}: update modes are for int8 parameters; precision "
                             f"{precision} updates half parameters by SGD")
    update = "master" if precision == "mixed" else resolve_update(None if half else update, quantized)
    seed = DEFAULT_UPDATE_SEED if update_seed is None else int(update_seed)
    if not 0 <= seed < 2 ** 32:
        raise TinyTrainError(f"update seed {update_seed}: expected an integer in [0, 2^32)")

    # the loss reads the logits: the input of a final softmax for cross-entropy
    last = graph.producer(graph.outputs[0])
    skip_softmax = (loss == "softmax_cross_entropy" and last is not None
                    and unit(last.type).loss_reads_input)
    logits = last.inputs[0] if skip_softmax else graph.outputs[0]
    loss_ops = [op for op in graph.ops if not (skip_softmax and op is last)]

    # which tensors need a gradient: downstream of a trained parameter
    requires_grad: set[str] = set()
    for op in loss_ops:
        if scheme.trains(op.name) or any(t in requires_grad for t in _act_inputs(graph, op)):
            requires_grad.update(op.outputs)
    if logits not in requires_grad:
        raise TinyTrainError(f"training scheme {scheme.name!r}: no trained parameter reaches the loss")
    for op in loss_ops:
        needs_backward = scheme.trains(op.name) or op.outputs[0] in requires_grad
        why = unit(op.type).backward_unsupported(graph, op) if needs_backward else None
        if why:
            raise UnsupportedError(op.name, why)
        if unit(op.type).frozen_only and needs_backward:
            raise UnsupportedError(op.name, f"{op.type} has no backward: run tinytrain.passes with "
                                            "frozen_ops=frozen_prefix(graph, scheme) so it stays frozen")

    buffers: dict[str, Buffer] = {}
    tensor_buffer: dict[str, str] = {}
    scratch = scratch_tensors(graph)     # per-op scratch of tinytrain.passes (one step)
    for t in graph.activations():
        if t.name in scratch:
            buffers[t.name] = Buffer(t.name, (scratch[t.name][1],), "int8", "scratch")
            tensor_buffer[t.name] = t.name
            continue
        alias = None
        prod = graph.producer(t.name)
        if prod is not None and unit(prod.type).aliases_input:
            alias = tensor_buffer[prod.inputs[0]]
        buffers[t.name] = Buffer(t.name, t.shape, t.dtype, "activation", alias_of=alias)
        tensor_buffer[t.name] = alias or t.name
    for name, (_, nbytes) in kernel_scratch(graph).items():    # the chosen kernel variants' own
        buffers[name] = Buffer(name, (nbytes,), "int8", "scratch")
    # graph.activations() follows dict order; make reshape aliases point at real buffers
    for name, b in buffers.items():
        while b.alias_of is not None and buffers[b.alias_of].alias_of is not None:
            b.alias_of = buffers[b.alias_of].alias_of
        tensor_buffer[name] = b.alias_of or name

    backward_ops = [op for op in reversed(loss_ops) if op.outputs[0] in requires_grad]
    forward = {op.name: ForwardStep(op.name) for op in graph.ops}
    backward: list[BackwardStep] = []
    written: set[str] = set()
    grad_name = {}
    for t in requires_grad:
        grad_name[t] = f"{t}.grad"

    def grad_buffer(t: str) -> str:
        name = grad_name[t]
        if name not in buffers:
            dt = "float16" if graph.tensors[t].dtype == "float16" else "float32"
            buffers[name] = Buffer(name, graph.tensors[t].shape, dt, "gradient")
        return name

    for op in backward_ops:
        step = BackwardStep(op.name, grad_out=grad_buffer(op.outputs[0]))
        if _has_mask(graph, op, quantized):
            mask = f"{op.outputs[0]}.mask"
            buffers[mask] = Buffer(mask, graph.tensors[op.outputs[0]].shape, "bits", "mask")
            forward[op.name].mask = mask
            step.mask = mask
        for x in _act_inputs(graph, op):
            if x in requires_grad and x not in step.grad_inputs:
                step.grad_inputs[x] = grad_buffer(x)
                step.accumulate[x] = x in written
                written.add(x)
        if unit(op.type).aliases_input and step.grad_inputs:
            # the gradient of a reshape is the gradient of its output, reinterpreted
            (gx,) = step.grad_inputs.values()
            if not step.accumulate[op.inputs[0]]:
                buffers[gx].alias_of = buffers[step.grad_out].alias_of or step.grad_out
        u = scheme.update(op.name)
        if u is not None and (u.weight or u.bias):
            step.update = u
            if quantized and u.bias:
                check_trainable_bias(graph, op)
            if u.weight:
                x = op.inputs[0]
                k = trained_in_channels(graph, op, u)
                full = _in_channels(graph, op)
                if k == full and u.channel_index is None:
                    step.saved["x"] = x
                else:
                    saved = f"{x}.saved_for_{op.name}"
                    shape = graph.tensors[x].shape[:-1] + (k,)
                    buffers[saved] = Buffer(saved, shape, graph.tensors[x].dtype, "saved")
                    step.saved["x"] = saved
                    _producer_step(graph, forward, x).saves.append((x, saved, k))
                per_channel = unit(op.type).update_scratch(graph, op, k)
                if per_channel:
                    scratch = f"{op.name}.wgrad_scratch"
                    buffers[scratch] = Buffer(scratch, (per_channel,), "float32", "scratch")
                    step.scratch = scratch
        if step.grad_inputs:
            step.saved.update(unit(op.type).backward_reads(graph, op))
        backward.append(step)

    loss_grad = grad_buffer(logits)
    written.add(logits)
    loss_step = LossStep(loss, logits, loss_grad)
    # mark activations the backward reads in full as saved
    for b in backward:
        for role, name in b.saved.items():
            if name in graph.tensors:
                buffers[tensor_buffer[name]].kind = "saved"
    return TrainingProgram(graph=graph, scheme=scheme, loss=loss, quantized=quantized,
                           momentum=momentum, update=update, update_seed=seed, buffers=buffers,
                           tensor_buffer=tensor_buffer,
                           forward=[forward[op.name] for op in graph.ops],
                           loss_step=loss_step, backward=backward, requires_grad=requires_grad,
                           precision=precision, loss_scale=scale, dynamic_loss_scale=dynamic,
                           loss_scale_interval=int(loss_scale_interval))


def _producer_step(graph: Graph, forward: dict[str, ForwardStep], tensor: str) -> ForwardStep:
    prod = graph.producer(tensor)
    if prod is None:
        # a graph input: saved by the first step that reads it
        prod = graph.consumers(tensor)[0]
    return forward[prod.name]
