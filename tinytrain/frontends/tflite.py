"""An int8 TFLite flatbuffer (bytes or a path) -> IR, read with the generated schema module.

No TFLite interpreter is needed. TFLite already uses NHWC activations, OHWI conv weights
and OI fully-connected weights; depthwise weights (1,H,W,C) become HWC (per-channel axis
3 -> 2). Scales are the file's float32 values, widened exactly to float64. SAME/VALID
padding becomes explicit pads computed as TFLite's ComputePaddingHeightWidth does.
Float32 models (no quantization anywhere) are read too; hybrid models are not.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Graph, Op, QuantParams, Tensor
from ..ops import tflite_unit
from .shape_fold import FOLDABLE, fold
from .tflite_check import check_model


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from .tf_quiet import quiet_tensorflow
            with quiet_tensorflow():
                from tensorflow.lite.python import schema_py_generated as schema
        except ImportError:
            raise TinyTrainError("reading .tflite needs the 'ai-edge-litert' (or 'tensorflow') "
                                 "package: pip install tinytrain[tf]") from None
    return schema


def load_tflite(source: bytes | str | Path, name: str | None = None) -> Graph:
    """Import a .tflite model (its bytes or its path)."""
    return load_tflite_indexed(source, name)[0]


def load_tflite_indexed(source: bytes | str | Path, name: str | None = None) -> tuple[Graph, dict[int, str]]:
    """Like load_tflite, also returning {tflite tensor index: IR tensor name} for the tensors
    the graph kept (to compare against a TFLite interpreter's tensor details)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise TinyTrainError(f"model file not found: {path}")
        data, default_name, label = path.read_bytes(), path.stem, str(path)
    else:
        data, default_name, label = bytes(source), "model", "the .tflite model"
    reader = TfliteReader(_schema(), data, label)
    graph = reader.read(name or default_name)
    return graph, {i: n for i, n in reader.names.items() if n in graph.tensors}


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _sanitize(raw: str) -> str:
    """A readable identifier from a TFLite tensor name ('a/b/Relu;a/b/conv' -> 'a_b_Relu')."""
    first = raw.split(";")[0]
    # The converter's names for the signature's input and output tensors.
    if re.fullmatch(r"StatefulPartitionedCall(_\d+)?:\d+", first):
        return "output"
    first = re.sub(r"^serving_default_(.+):0$", r"\1", first)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", first).strip("_")
    name = re.sub(r"_+", "_", name)
    if not name:
        return "t"
    return "t_" + name if name[0].isdigit() else name


def _scope_prefix(raw_names: list[str]) -> str:
    """The leading scopes all '/'-names share ("functional_1/model_1/"), to drop from names."""
    split = [r.split("/") for r in raw_names if "/" in r]
    prefix: list[str] = []
    while split and all(len(p) > len(prefix) + 1 and p[len(prefix)] == split[0][len(prefix)]
                        for p in split):
        prefix.append(split[0][len(prefix)])
    return "/".join(prefix) + "/" if prefix else ""


def tflite_padding(padding_valid: bool, in_size: int, kernel: int, stride: int,
                   dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding exactly as TFLite's ComputePaddingHeightWidth."""
    eff = (kernel - 1) * dilation + 1
    out = (in_size - eff + stride) // stride if padding_valid else (in_size + stride - 1) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total // 2 + total % 2


def tflite_unit_aliases(op: Op) -> bool:
    """The op's output is a view of its input's bytes (a reshape)."""
    from ..ops import unit
    return unit(op.type).aliases_input


def file_activation_shape(ir_shape, rank: int) -> tuple[int, ...] | None:
    """The file shape of rank `rank` that the IR holds as `ir_shape` (ir_activation_shape's
    inverse), or None."""
    ir_shape = tuple(int(d) for d in ir_shape)
    if rank == len(ir_shape):
        return ir_shape
    if rank == 3 and len(ir_shape) == 4 and ir_shape[1] == 1:
        return (1,) + ir_shape[2:]
    if rank == 2 and len(ir_shape) == 4 and ir_shape[:2] == (1, 1):
        return ir_shape[2:]
    return None


def ir_activation_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The IR shape of a file activation of `shape`: NHWC and (1, features) as they are, a
    rank-3 sequence (1, T, F) as (1, 1, T, F), and so T rows (T, F) inside a graph (the
    Tensordot of a Dense on a sequence); None for ranks the IR has no form for."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 2 and shape[0] > 1:
        return (1, 1) + shape
    if len(shape) in (2, 4):
        return shape
    if len(shape) == 3 and shape[0] == 1:
        return (1, 1, shape[1], shape[2])
    return None


# Inputs an op cannot do without (the others, such as a conv's bias, may be absent or -1).
# Inputs the shape-arithmetic operators need (the op units say theirs: tflite_inputs).
_FOLD_INPUTS = {"STRIDED_SLICE": 4, "GATHER": 2, "EXPAND_DIMS": 2, "REDUCE_PROD": 2,
                "SUB": 2, "MUL": 2, "FLOOR_DIV": 2}


def at_least_one(layer: str, **fields) -> None:
    for field, values in fields.items():
        if min(values) < 1:
            raise TinyTrainError(f"layer {layer!r}: {field} {tuple(values)} (corrupt file?)")


class TfliteReader:
    def __init__(self, schema, data: bytes, label: str = "the .tflite model"):
        self.s = schema
        self.data = data
        n_sub = check_model(schema, data, label)    # a truncated or corrupt file stops here
        self.model = schema.Model.GetRootAsModel(data, 0)
        if n_sub != 1:
            raise UnsupportedError("model", f"{n_sub} subgraphs (control flow); exactly one expected")
        self.g = self.model.Subgraphs(0)
        self.op_names = _enum_names(schema.BuiltinOperator)
        self.type_names = _enum_names(schema.TensorType)
        self.act_names = _enum_names(schema.ActivationFunctionType)
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.names: dict[int, str] = {}      # tflite tensor index -> IR name, given on first use
        self.folded: dict[int, np.ndarray] = {}   # tflite tensor index -> value of folded shape arithmetic
        self.views: set[int] = set()   # file tensors held in an IR shape of another rank (rank 5)
        self.file_shapes: dict[int, tuple[int, ...]] = {}   # activations' file shapes, run-time dims resolved
        self.unresolved: dict[str, int] = {}   # IR tensor -> file index: dims its op's unit computes
        self.used_names: set[str] = set()
        self.scope = _scope_prefix([self.raw_name(i) for i in range(self.g.TensorsLength())])

    # --- tensors -----------------------------------------------------------------------
    def _unique(self, base: str) -> str:
        name, k = base, 2
        while name in self.used_names:
            name, k = f"{base}_{k}", k + 1
        self.used_names.add(name)
        return name

    def _name(self, index: int) -> str:
        """IR name of an activation tensor: its file name without the model scopes, sanitized."""
        if index not in self.names:
            raw = self.raw_name(index)
            self.names[index] = self._unique(_sanitize(raw[len(self.scope):] if raw.startswith(self.scope)
                                                       else raw))
        return self.names[index]

    def _const_name(self, index: int, op_name: str, role: str) -> str:
        """Weights and biases are named after their op ("conv1_Relu.weight"): the converter
        gives biases the fused activation's name, which would read as the op's output."""
        if index not in self.names:
            self.names[index] = self._unique(f"{op_name}.{role}")
        return self.names[index]

    def raw_name(self, index: int) -> str:
        raw = self.g.Tensors(index).Name()
        return raw.decode("utf-8", "replace").split(";")[0] if raw else f"tensor{index}"

    def type_of(self, index: int) -> str:
        return self.type_names.get(self.g.Tensors(index).Type(), "UNKNOWN")

    def _buffer(self, index: int) -> np.ndarray | None:
        t = self.g.Tensors(index)
        buf = self.model.Buffers(t.Buffer())
        if buf is None:
            return None
        if buf.Offset() > 1:   # large models keep buffers after the flatbuffer
            raw = self.data[buf.Offset(): buf.Offset() + buf.Size()]
            return np.frombuffer(raw, dtype=np.uint8) if raw else None
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy()

    def shape(self, index: int) -> tuple[int, ...]:
        t = self.g.Tensors(index)
        return tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()

    def const_values(self, op_name: str, index: int, np_dtype) -> np.ndarray:
        if index in self.folded:
            return self.folded[index].astype(np_dtype)
        raw = self._buffer(index)
        if raw is None:
            raise UnsupportedError(op_name, f"non-constant operand {self.raw_name(index)!r}")
        want = {np.int8: "INT8", np.int32: "INT32", np.int64: "INT64", np.float32: "FLOAT32"}[np_dtype]
        if self.type_of(index) != want:
            raise UnsupportedError(op_name, f"{self.type_of(index)} constant {self.raw_name(index)!r} "
                                            f"({want} expected)")
        return np.frombuffer(raw.tobytes(), dtype=np_dtype).reshape(self.shape(index))

    def _quant(self, index: int) -> QuantParams | None:
        q = self.g.Tensors(index).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        scale = q.ScaleAsNumpy().astype(np.float32).astype(np.float64)
        zero = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros_like(scale, np.int64)
        axis = int(q.QuantizedDimension()) if scale.size > 1 else None
        return QuantParams(scale, zero, axis)

    def _dynamic_dims(self, index: int) -> list[int]:
        """Axes the file marks as known only at run time (-1 in the shape signature)."""
        t = self.g.Tensors(index)
        if not t.ShapeSignatureLength():
            return []
        return [i for i, d in enumerate(t.ShapeSignatureAsNumpy()) if d < 0]

    def activation(self, op_name: str, index: int, computed_shape: tuple[int, ...] | None = None,
                   ir_shape: tuple[int, ...] | None = None, view_ok: bool = False) -> str:
        """The IR name of a computed (non-constant) tensor, registering it on first use.
        `computed_shape` (a RESHAPE's folded target) replaces the file's static shape where
        the file leaves dimensions to run time; a dynamic dimension nothing computed (other
        than the batch) is refused, its static size being a placeholder.

        The IR shape is the file's, except that a rank-3 (1, T, F) sequence becomes (1, 1, T, F)
        (NHWC with H = 1: Conv1D, Dense on a sequence). `ir_shape` registers a tensor the
        file holds in a rank the IR has no form for (the rank-5 steps of an upsampling) as
        an IR tensor of that shape with the same bytes: a "view", which only the units that
        asked for it (view_ok: reshape, the upsampling TILE) may read."""
        name = self._name(index)
        if name in self.tensors:
            if index in self.views and not view_ok:
                raise UnsupportedError(op_name, f"rank-{len(self.shape(index))} activation "
                                                f"{self.raw_name(index)!r} {self.shape(index)}")
            return name
        if self.is_constant(index):
            raise UnsupportedError(op_name, f"constant operand {self.raw_name(index)!r} where an "
                                            "activation is expected")
        ttype = self.type_of(index)
        unresolved = (computed_shape is None and ir_shape is None
                      and any(d != 0 for d in self._dynamic_dims(index)))
        shape = self._static_shape(op_name, index, computed_shape, unresolved_ok=unresolved)
        self.file_shapes[index] = shape
        if ttype == "INT8":
            quant = self._quant(index)
            if quant is None:
                raise UnsupportedError(op_name, f"int8 tensor {self.raw_name(index)!r} without quantization")
            if quant.per_channel:
                raise UnsupportedError(op_name, f"per-channel quantized activation {self.raw_name(index)!r}")
            dtype = "int8"
        elif ttype == "FLOAT32":
            quant, dtype = None, "float32"
        else:
            raise UnsupportedError(op_name, f"tensor type {ttype} ({self.raw_name(index)!r}); "
                                            "int8 or float32 activations only")
        edge = index in set(int(i) for i in self.g.InputsAsNumpy()) | set(int(i) for i in self.g.OutputsAsNumpy())
        if len(shape) >= 2 and shape[0] != 1 and (edge or len(shape) != 2):
            raise UnsupportedError(op_name, f"batch size {shape[0]} ({self.raw_name(index)!r}); batch 1 only")
        if ir_shape is not None:
            if int(np.prod(ir_shape)) != int(np.prod(shape)):
                raise TinyTrainError(f"layer {op_name!r}: {self.raw_name(index)!r} {shape} held as {ir_shape}")
            if tuple(ir_shape) != ir_activation_shape(shape):
                self.views.add(index)
            shape = tuple(ir_shape)
        else:
            mapped = ir_activation_shape(shape)
            if mapped is None:
                raise UnsupportedError(op_name, f"rank-{len(shape)} activation {self.raw_name(index)!r} "
                                                "(NHWC, (1, T, F) or (1, features) only)")
            shape = mapped
        self.tensors[name] = Tensor(name, shape, dtype, quant)
        if unresolved:
            self.unresolved[name] = index
        return name

    def operand(self, op_name: str, index: int, act_dtype: str, role: str = "const") -> str:
        """An operand of an elementwise op: its activation, or a constant tensor of any shape
        (a scalar, a per-channel vector...) with the file's own per-tensor quantization for
        int8 (the converter quantizes such constants asymmetrically), named after its op."""
        if not self.is_constant(index):
            return self.activation(op_name, index)
        name = self._const_name(index, op_name, role)
        if name in self.tensors:
            return name
        want = {"int8": "INT8", "float32": "FLOAT32"}[act_dtype]
        if self.type_of(index) != want:
            raise UnsupportedError(op_name, f"{self.type_of(index)} constant {self.raw_name(index)!r} "
                                            f"with {act_dtype} activations")
        data = self.const_values(op_name, index, np.int8 if want == "INT8" else np.float32)
        quant = None
        if want == "INT8":
            quant = self._quant(index)
            if quant is None or quant.scale.size != 1:
                raise UnsupportedError(op_name, f"int8 constant {self.raw_name(index)!r} without one "
                                                "per-tensor scale")
        self.tensors[name] = Tensor(name, data.shape, act_dtype, quant, np.array(data))
        return name

    def _static_shape(self, op_name: str, index: int, computed_shape=None,
                      unresolved_ok: bool = False) -> tuple[int, ...]:
        """The file's shape of a tensor, with `computed_shape` for dimensions left to run time
        (unresolved_ok: the static placeholder, for the op's unit to compute afterwards)."""
        shape = self.shape(index)
        dynamic = self._dynamic_dims(index)
        if computed_shape is not None and tuple(computed_shape) != shape:
            if not dynamic:
                raise TinyTrainError(f"layer {op_name!r}: computes a tensor of shape {tuple(computed_shape)} "
                                     f"where the file says {shape}")
            shape, dynamic = tuple(computed_shape), []
        if any(d != 0 for d in dynamic) and not unresolved_ok:
            raise UnsupportedError(op_name, self._run_time_message(index))
        return shape

    def _run_time_message(self, index: int) -> str:
        signature = self.g.Tensors(index).ShapeSignatureAsNumpy().tolist()
        return (f"tensor {self.raw_name(index)!r} with dimensions known only at run time "
                f"(shape signature {signature})")

    def _resolve(self, op: Op) -> None:
        """Outputs of `op` whose dimensions the file leaves to run time (everything after a
        dynamic-batch nearest UpSampling2D, whose shape the converter computes with SHAPE):
        the op's unit computes them from its inputs (OpUnit.output_shape)."""
        from types import SimpleNamespace
        from ..ops import unit
        for t in op.outputs:
            if t not in self.unresolved:
                continue
            index = self.unresolved.pop(t)
            shape = unit(op.type).output_shape(SimpleNamespace(tensors=self.tensors), op)
            file_shape = file_activation_shape(shape, len(self.shape(index))) if shape is not None else None
            if file_shape is None or any(d >= 0 and d != f for d, f in zip(
                    self.g.Tensors(index).ShapeSignatureAsNumpy().tolist()[1:], file_shape[1:])):
                raise UnsupportedError(op.name, self._run_time_message(index))
            self.tensors[t].shape = tuple(int(d) for d in shape)
            self.file_shapes[index] = file_shape

    def ir_shape(self, op_name: str, index: int, computed_shape=None) -> tuple[int, ...] | None:
        """The IR shape a not yet registered activation would get (None: no IR form, such as
        rank 5): what a RESHAPE checks before it decides to alias."""
        return ir_activation_shape(self._static_shape(op_name, index, computed_shape))

    def ir_axis(self, index: int, axis: int) -> int:
        """The IR axis of axis `axis` (negative counts from the end) of file tensor `index`:
        a rank-3 sequence (1, T, F) is held as (1, 1, T, F)."""
        rank = len(self.shape(index))
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise TinyTrainError(f"axis {axis} of a rank-{rank} tensor {self.raw_name(index)!r}")
        return axis + 1 if rank == 3 and axis >= 1 else axis

    def same_quant(self, a: int, b: int) -> bool:
        """Two file tensors share dtype and quantization (a reshape of one is the other's bytes)."""
        if self.type_of(a) != self.type_of(b):
            return False
        qa, qb = self._quant(a), self._quant(b)
        if qa is None or qb is None:
            return qa is None and qb is None
        return (np.array_equal(qa.scale, qb.scale) and np.array_equal(qa.zero_point, qb.zero_point))

    def alias(self, index: int, ir_name: str, file_shape: tuple[int, ...], view: bool = False) -> None:
        """File tensor `index` holds the bytes of IR tensor `ir_name` (a RESHAPE whose IR shape
        does not change, or a rank-5 step of an upsampling: `view`, readable only by the
        units that ask for views)."""
        if self.names.get(index) in self.tensors:
            raise TinyTrainError(f"tensor {self.raw_name(index)!r} is written twice")
        self.names[index] = ir_name
        self.file_shapes[index] = tuple(file_shape)
        if view:
            self.views.add(index)

    def as_shape(self, op_name: str, name: str, shape: tuple[int, ...]) -> tuple[str, list[Op]]:
        """IR tensor `name` seen with `shape` (same bytes): itself, the input of the reshape that
        made it when that has the shape, or a new reshape (an arena alias: no code)."""
        shape = tuple(shape)
        t = self.tensors[name]
        if t.shape == shape:
            return name, []
        if t.size != int(np.prod(shape)):
            raise TinyTrainError(f"layer {op_name!r}: {name!r} {t.shape} seen as {shape}")
        prod = next((op for op in reversed(self.ops) if name in op.outputs), None)
        if (prod is not None and tflite_unit_aliases(prod) and self.tensors[prod.inputs[0]].shape == shape):
            return prod.inputs[0], []
        view = self.new_tensor(f"{name}_as_{'x'.join(map(str, shape))}", shape, t.dtype, t.quant)
        return view, [Op(view, "reshape", [name], [view], {})]

    def readers(self, ir_name: str) -> int:
        """How many operators of the file read IR tensor `ir_name` (through any file tensor
        that holds it; not counting the reshapes that only alias it, nor SHAPE, which reads
        no values), +1 if a graph output."""
        holders = {i for i, n in self.names.items() if n == ir_name}
        count = sum(1 for i in self.g.OutputsAsNumpy() if int(i) in holders)
        for k in range(self.g.OperatorsLength()):
            op = self.g.Operators(k)
            if self._kind(op) == "SHAPE":
                continue
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(i) for i in op.OutputsAsNumpy()]
            if holders.intersection(ins) and not all(self.names.get(o) == ir_name for o in outs):
                count += 1
        return count

    def new_tensor(self, base: str, shape, dtype: str, quant) -> str:
        """A tensor the file does not have (a dropped zero bias, an intermediate)."""
        name = self._unique(base)
        self.tensors[name] = Tensor(name, shape, dtype, quant)
        return name

    def weight(self, op_name: str, index: int, act_dtype: str, axis: int,
                reshape: tuple[int, ...] | None = None) -> str:
        name = self._const_name(index, op_name, "weight")
        ttype = self.type_of(index)
        want = {"int8": "INT8", "float32": "FLOAT32"}[act_dtype]
        if ttype != want:
            raise UnsupportedError(op_name, f"{ttype} weights {self.raw_name(index)!r} with {act_dtype} "
                                            "activations (hybrid / float16 models are not supported)")
        data = self.const_values(op_name, index, np.int8 if want == "INT8" else np.float32)
        quant = None
        if want == "INT8":
            quant = self._quant(index)
            if quant is None:
                raise UnsupportedError(op_name, f"int8 weights {self.raw_name(index)!r} without quantization")
            if np.any(quant.zero_point != 0):
                raise UnsupportedError(op_name, "asymmetric (non-zero zero point) weights")
            if quant.per_channel:
                quant = QuantParams(quant.scale, quant.zero_point, axis)
        if reshape is not None:
            data = data.reshape(reshape)
        self.tensors[name] = Tensor(name, data.shape, act_dtype, quant, np.array(data))
        return name

    def bias(self, op_name: str, index: int, x: str, w: str, out_ch: int) -> str:
        xt, wt = self.tensors[x], self.tensors[w]
        if xt.dtype == "int8":
            scale = xt.scale * wt.quant.scale
            if scale.size == 1:
                scale = np.full(out_ch, scale[0])
            quant = QuantParams(scale, np.zeros(out_ch, np.int64), 0 if out_ch > 1 else None)
            dtype, want, np_dtype = "int32", "INT32", np.int32
        else:
            quant, dtype, want, np_dtype = None, "float32", "FLOAT32", np.float32
        if index < 0:   # the converter drops all-zero biases
            name = self.new_tensor(f"{op_name}.bias", (out_ch,), dtype, quant)
            self.tensors[name].data = np.zeros(out_ch, np_dtype)
            return name
        name = self._const_name(index, op_name, "bias")
        if self.type_of(index) != want:
            raise UnsupportedError(op_name, f"{self.type_of(index)} bias {self.raw_name(index)!r}; "
                                            f"{want} expected")
        data = self.const_values(op_name, index, np_dtype).reshape(-1)
        if data.size != out_ch:
            raise TinyTrainError(f"layer {op_name!r}: bias has {data.size} values for {out_ch} channels")
        file_quant = self._quant(index)
        if dtype == "int32" and file_quant is not None:
            scale = np.broadcast_to(file_quant.scale, (out_ch,))
            quant = QuantParams(scale, np.zeros(out_ch, np.int64), 0 if out_ch > 1 else None)
        self.tensors[name] = Tensor(name, (out_ch,), dtype, quant, np.array(data))
        return name

    # --- ops ---------------------------------------------------------------------------
    def options(self, op, cls):
        table = op.BuiltinOptions()
        if table is None:
            return None
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def required_options(self, name, op, cls):
        opts = self.options(op, cls)
        if opts is None:
            raise TinyTrainError(f"layer {name!r}: no {cls.__name__} (corrupt file?)")
        return opts

    def fused(self, op_name: str, opts) -> str:
        code = opts.FusedActivationFunction() if opts is not None else 0
        act = self.act_names.get(code, str(code))
        if act not in ("NONE", "RELU", "RELU6"):
            raise UnsupportedError(op_name, f"fused activation {act}")
        return act.lower()

    def unary(self, name: str, op_type: str, ins: list[int], outs: list[int], attrs=None) -> Op:
        """An op of one activation in and one out (relu, softmax, quantize...)."""
        x = self.activation(name, ins[0])
        y = self.activation(name, outs[0])
        return Op(name, op_type, [x], [y], dict(attrs or {}))

    # --- constant folding of shape arithmetic (see shape_fold.py) --------------------------
    def is_constant(self, index: int) -> bool:
        return index in self.folded or self._buffer(index) is not None

    def const_int(self, op_name: str, index: int) -> np.ndarray:
        if index in self.folded:
            return self.folded[index]
        np_dtype = {"INT32": np.int32, "INT64": np.int64}.get(self.type_of(index))
        if np_dtype is None:
            raise UnsupportedError(op_name, f"{self.type_of(index)} constant {self.raw_name(index)!r} "
                                            "in shape arithmetic (int32 / int64 only)")
        return self.const_values(op_name, index, np_dtype)

    def _foldable(self, kind: str, ins: list[int], outs: list[int]) -> bool:
        if kind not in FOLDABLE or self.type_of(outs[0]) not in ("INT32", "INT64"):
            return False
        return kind == "SHAPE" or all(self.is_constant(i) for i in ins if i >= 0)

    def _fold_options(self, name, kind, op) -> dict:
        s = self.s
        if kind == "STRIDED_SLICE":
            o = self.options(op, s.StridedSliceOptions)
            if o is None:
                return {}
            if o.EllipsisMask() or o.NewAxisMask():
                raise UnsupportedError(name, "STRIDED_SLICE with an ellipsis or new-axis mask")
            return dict(begin_mask=o.BeginMask(), end_mask=o.EndMask(),
                        shrink_axis_mask=o.ShrinkAxisMask(), offset=bool(o.Offset()))
        if kind == "PACK":
            o = self.options(op, s.PackOptions)
            return dict(axis=o.Axis() if o is not None else 0)
        if kind == "CONCATENATION":
            o = self.options(op, s.ConcatenationOptions)
            self._no_fused_activation(name, kind, o)
            return dict(axis=o.Axis() if o is not None else 0)
        if kind == "GATHER":
            o = self.options(op, s.GatherOptions)
            return dict(axis=o.Axis() if o is not None else 0, batch_dims=o.BatchDims() if o is not None else 0)
        if kind == "SQUEEZE":
            o = self.options(op, s.SqueezeOptions)
            dims = o.SqueezeDimsAsNumpy() if o is not None and o.SqueezeDimsLength() else []
            return dict(squeeze_dims=[int(d) for d in dims])
        if kind == "RESHAPE":
            o = self.options(op, s.ReshapeOptions)
            shape = o.NewShapeAsNumpy() if o is not None and o.NewShapeLength() else []
            return dict(new_shape=[int(d) for d in shape])
        if kind == "REDUCE_PROD":
            o = self.options(op, s.ReducerOptions)
            return dict(keep_dims=bool(o.KeepDims()) if o is not None else False)
        if kind in ("ADD", "SUB", "MUL"):
            cls = {"ADD": s.AddOptions, "SUB": s.SubOptions, "MUL": s.MulOptions}[kind]
            self._no_fused_activation(name, kind, self.options(op, cls))
        return {}

    def _no_fused_activation(self, name, kind, opts) -> None:
        if self.fused(name, opts) != "none":
            raise UnsupportedError(name, f"{kind} with a fused activation in shape arithmetic")

    def _fold(self, name, kind, op, ins, outs) -> None:
        """Compute a shape-arithmetic op at import; its output becomes a known constant."""
        if kind == "SHAPE":       # the file's shape (the IR holds a (1, T, F) as (1, 1, T, F))
            if ins[0] not in self.file_shapes:
                self.activation(name, ins[0], view_ok=True)
            values = [self.file_shapes[ins[0]]]
        else:
            values = [self.const_int(name, i) for i in ins if i >= 0]
        opts = self._fold_options(name, kind, op)
        out_dtype = np.int64 if self.type_of(outs[0]) == "INT64" else np.int32
        try:
            value = fold(kind, values, opts, out_dtype)
        except (ValueError, IndexError, TypeError) as e:     # numpy's complaint about bad operands
            raise UnsupportedError(name, f"{kind} on constants {[v.tolist() for v in map(np.asarray, values)]} "
                                         f"({e})") from None
        file_shape = self.shape(outs[0])
        if self.g.Tensors(outs[0]).ShapeLength() and value.shape != file_shape:
            raise TinyTrainError(f"layer {name!r}: {kind} computes a value of shape {value.shape}, "
                                 f"the file says {file_shape}")
        self.folded[outs[0]] = value

    def _kind(self, op) -> str:
        """The builtin operator name of a file operator ("CONV_2D", "custom op X")."""
        code = self.model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = self.op_names.get(builtin, f"builtin {builtin}")
        if kind == "CUSTOM":
            kind = f"custom op {code.CustomCode().decode('utf-8', 'replace') if code.CustomCode() else '?'}"
        return kind

    def _convert_op(self, op) -> list[Op]:
        kind = self._kind(op)
        ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(i) for i in op.OutputsAsNumpy()]
        if len(outs) != 1:
            raise UnsupportedError(self.raw_name(outs[0]) if outs else kind, f"{kind} with {len(outs)} outputs")
        name = self._name(outs[0])
        err_name = self.raw_name(outs[0])
        u = tflite_unit(kind)
        required = _FOLD_INPUTS.get(kind) or (u.tflite_inputs if u is not None else 1)
        if len(ins) < required or min(ins[:required], default=0) < 0:
            raise TinyTrainError(f"layer {err_name!r}: {kind} with inputs {ins} ({required} required)")
        result = None
        try:
            if self._foldable(kind, ins, outs):
                self._fold(name, kind, op, ins, outs)
                return []
            u = tflite_unit(kind)           # the op unit that imports this operator
            if u is None:
                raise UnsupportedError(err_name, f"op {kind}")
            result = u.from_tflite(self, name, kind, op, ins, outs)
            result = result if isinstance(result, list) else [result]
            for ir_op in result:
                self._resolve(ir_op)
        except UnsupportedError as e:
            if e.layer in (name, *(o.name for o in (result if isinstance(result, list) else []))):
                raise UnsupportedError(err_name, f"{kind}: {e.what}") from None   # the file's name
            raise
        return result

    def _drop_dead_reshapes(self, outputs: set[str]) -> None:
        """Remove aliasing ops (reshapes) nothing reads: left when a unit (the upsampling TILE)
        read the tensor they reshaped instead of their output."""
        from ..ops import unit
        while True:
            read = outputs | {t for op in self.ops for t in op.inputs}
            dead = [op for op in self.ops if unit(op.type).aliases_input and op.outputs[0] not in read]
            if not dead:
                return
            for op in dead:
                self.ops.remove(op)
                del self.tensors[op.outputs[0]]

    def read(self, graph_name: str) -> Graph:
        g = self.g
        inputs = [int(i) for i in g.InputsAsNumpy()]
        outputs = [int(i) for i in g.OutputsAsNumpy()]
        for i in inputs:
            self.activation("input", i)
        for name, i in self.unresolved.items():
            raise UnsupportedError(name, self._run_time_message(i))
        for k in range(g.OperatorsLength()):
            self.ops.extend(self._convert_op(g.Operators(k)))
        for i in outputs:
            if i in self.views:
                raise UnsupportedError(self.raw_name(i), f"rank-{len(self.shape(i))} model output {self.shape(i)}")
        self._drop_dead_reshapes({self._name(i) for i in outputs})
        graph = Graph(graph_name, self.tensors, self.ops, [self._name(i) for i in inputs],
                      [self._name(i) for i in outputs])
        return graph.validate()
