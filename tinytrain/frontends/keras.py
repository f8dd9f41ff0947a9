"""Keras 3 models (object or .keras/.h5 path) -> IR: float32 directly, int8 through TFLite.

Float import walks the functional graph in topological order and maps each layer to IR
ops, converting layouts once (Conv2D kernel HWIO -> OHWI, depthwise HWC1 -> HWC, Dense
IO -> OI). BatchNormalization right after a conv/dense is folded into its weights (anywhere
else it becomes a mul and an add by per-channel constants, as Rescaling does with its
scale and offset); a ReLU/ReLU6 right after a conv/dense/add whose output nothing else reads
is fused into that op's `activation`. Dropout and linear activations vanish. Keras 3
operation nodes (`x + 3.0`, `keras.ops.maximum(x, y)`) are imported by the units naming them
in `keras_ops`, their constants made float32 constant tensors.

The int8 path converts with TFLite full-integer quantization and imports the .tflite,
so the IR is exactly what TFLite runs. TensorFlow/Keras are imported lazily, here only.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Graph, Op, Tensor, same_padding
from ..ops import keras_activation_unit, keras_layer_unit, keras_op_unit, unit
from .tf_quiet import quiet_tensorflow



def _import_keras():
    try:
        with quiet_tensorflow():      # TensorFlow's import logs to fd 2 from C++
            import keras
    except ImportError:
        raise TinyTrainError("Keras models need TensorFlow: pip install tinytrain[tf]") from None
    return keras


def _as_model(model):
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise TinyTrainError(f"model file not found: {path}")
        keras = _import_keras()
        try:
            with quiet_tensorflow():
                return keras.models.load_model(path, compile=False)
        except Exception as e:   # keras raises many types for a corrupt / foreign file
            raise TinyTrainError(f"{path}: cannot load the Keras model ({e})") from None
    return model


def load_keras(model, quantize: str | None = None, calibration: np.ndarray | None = None) -> Graph:
    """Import a Keras model: float32 IR, or int8 IR (quantize="int8", needs calibration)."""
    model = _as_model(model)
    if quantize is None:
        return keras_to_float_graph(model)
    if quantize != "int8":
        raise TinyTrainError(f"unknown quantization {quantize!r} (use None or 'int8')")
    if calibration is None:
        raise TinyTrainError("int8 quantization of a Keras model needs calibration data "
                             "(representative float32 inputs)")
    from .tflite import load_tflite
    graph = load_tflite(keras_to_int8_tflite(model, calibration), name=model.name)
    graph.layer_names = keras_layer_map(model, graph)
    return graph


WEIGHTED_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense", "Conv1D", "DepthwiseConv1D")


def keras_weighted_layers(model) -> list:
    """The model's weighted layers (WEIGHTED_LAYERS) in topological order."""
    return [layer for layer, _, _ in _nodes_in_order(model)[0] if type(layer).__name__ in WEIGHTED_LAYERS]


def _ir_weight_shape(layer) -> tuple[int, ...]:
    """The IR layout of a Keras layer's kernel (OHWI, depthwise HWC, Dense OI)."""
    k = tuple(layer.get_weights()[0].shape)
    kind = type(layer).__name__
    if kind in ("Conv1D", "DepthwiseConv1D"):      # a 1-D kernel is one row of a 2-D one
        k, kind = (1,) + k, kind.replace("1D", "2D")
    if kind == "Conv2D":
        return (k[3], k[0], k[1], k[2])
    if kind == "DepthwiseConv2D":
        return k[:3]
    return (k[1], k[0])


def keras_layer_map(model, graph) -> dict[str, str]:
    """Keras layer name -> IR op name, for the weighted layers whose name the TFLite converter
    changed (Keras "conv2" -> op "conv2_1_Relu", the last Dense -> "output"). The converter
    keeps every weighted layer as one op, in order (batch norms fold into them, activations
    fuse): pair them in order, checked by weight shape; where that fails, by name prefix."""
    import re
    from ..ops import unit
    layers = keras_weighted_layers(model)
    ops = [op for op in graph.ops if unit(op.type).weighted]
    if len(layers) == len(ops) and all(
            _ir_weight_shape(layer) == graph.tensors[op.inputs[1]].shape for layer, op in zip(layers, ops)):
        pairs = [(layer.name, op.name) for layer, op in zip(layers, ops)]
    else:
        pairs = []
        for layer in layers:
            hits = [op.name for op in ops if re.fullmatch(re.escape(layer.name) + r"(_\d+)?(_.*)?", op.name)]
            if len(hits) == 1:
                pairs.append((layer.name, hits[0]))
    return {k: v for k, v in pairs if k != v}


def _h5_config(path):
    """The model config a legacy .h5 Keras file keeps in its model_config attribute."""
    import json
    try:
        import h5py
    except ImportError:
        return None
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except (OSError, ValueError):
        return None
    if raw is None:
        return None
    try:
        return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None


def keras_file_weighted_layers(path) -> list[str] | None:
    """Names of the weighted layers of a .keras (or legacy .h5) file, read from its config
    without importing TensorFlow (None when the file is not a readable Keras file)."""
    import json
    import zipfile
    if str(path).lower().endswith(".h5"):
        config = _h5_config(path)
        if config is None:
            return None
    else:
        try:
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None
    names = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") in WEIGHTED_LAYERS and isinstance(node.get("config"), dict):
                names.append(node["config"].get("name"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(config)
    return [n for n in names if isinstance(n, str)]


def keras_to_int8_tflite(model, calibration: np.ndarray) -> bytes:
    """Full-integer TFLite conversion with int8 input and output, calibrated on `calibration`
    (float32 samples shaped like the model input, batch axis first)."""
    model = _as_model(model)
    _import_keras()
    import tensorflow as tf
    try:
        calibration = np.asarray(calibration, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise TinyTrainError(f"calibration data: not numbers ({e})") from None
    want = tuple(d or 1 for d in model.inputs[0].shape[1:])
    if calibration.ndim != len(want) + 1 or calibration.shape[1:] != want or len(calibration) == 0:
        raise TinyTrainError(f"calibration data shaped {calibration.shape}; expected (N,) + {want}")
    if not np.all(np.isfinite(calibration)):
        raise TinyTrainError(f"calibration data: {int(np.sum(~np.isfinite(calibration)))} values are NaN or infinite")

    def representative():
        for i in range(len(calibration)):
            yield [calibration[i:i + 1]]

    # Convert a batch-1 wrapper (the .tflite frontend also folds the SHAPE/STRIDED_SLICE/PACK
    # ops a dynamic batch gives a Flatten, but a fixed batch keeps the file simple).
    keras = _import_keras()
    with quiet_tensorflow() as log:     # the converter prints to stdout and logs to fd 2
        fixed = keras.Input(batch_shape=(1,) + want, name=model.inputs[0].name)
        converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(fixed, model(fixed), name=model.name))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        try:
            return bytes(converter.convert())
        except Exception as e:   # the converter reports unsupported ops as generic errors
            failure = e
    details = log.tail()
    raise TinyTrainError(f"TFLite int8 conversion failed: {failure}"
                         + (f"\nTensorFlow said:\n{details}" if details else ""))


def keras_to_float_graph(model) -> Graph:
    model = _as_model(model)
    with quiet_tensorflow():        # reading weights runs the first TensorFlow ops (which log)
        return KerasImporter(model).run()


def _nodes_in_order(model) -> tuple[list, object]:
    """(layer, input KerasTensors, output KerasTensors) in topological order."""
    functional = getattr(model, "_functional", None) or model     # Sequential wraps one
    by_depth = getattr(functional, "_nodes_by_depth", None)
    if by_depth is None:
        raise UnsupportedError(model.name, "model class without a functional graph "
                                           "(subclassed model?); use Sequential or functional models")
    order = {id(layer): i for i, layer in enumerate(functional.layers)}
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        for node in sorted(by_depth[depth], key=lambda n: order.get(id(n.operation), -1)):
            nodes.append((node.operation, list(node.input_tensors), list(node.output_tensors)))
    return nodes, functional


def _operation_arguments(functional) -> dict[int, tuple[tuple, dict]]:
    """(positional, keyword) arguments of every node, by id of its first output KerasTensor:
    a keras.ops node (`x + 3.0`) keeps its constants there, not among its input tensors."""
    out = {}
    for nodes in functional._nodes_by_depth.values():
        for node in nodes:
            args = getattr(node, "arguments", None)
            if node.output_tensors and args is not None:
                out[id(node.output_tensors[0])] = (tuple(args.args), dict(args.kwargs))
    return out


class KerasImporter:
    def __init__(self, model):
        self.model = model
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.ir_of: dict[int, str] = {}       # id(KerasTensor) -> IR tensor name
        self.readers: dict[int, int] = {}     # id(KerasTensor) -> consumers (+1 if a model output)
        self.ir_readers: dict[str, int] = {}  # IR tensor -> readers, through aliases (Dropout...)
        self.op_names: set[str] = set()

    # --- helpers -----------------------------------------------------------------------
    def _unique_op_name(self, base: str) -> str:
        name, k = base, 2
        while name in self.op_names or name in self.tensors:   # the op's output takes its name
            name, k = f"{base}_{k}", k + 1
        self.op_names.add(name)
        return name

    def new_tensor(self, base: str, shape, data: np.ndarray | None = None) -> str:
        name, k = base, 2
        while name in self.tensors:
            name, k = f"{base}_{k}", k + 1
        self.tensors[name] = Tensor(name, shape, "float32", None,
                                    None if data is None else np.ascontiguousarray(data, np.float32))
        return name

    def shape(self, layer, kt) -> tuple[int, ...]:
        """The IR shape of a Keras tensor: NHWC and (1, features) as they are, a (1, T, F)
        sequence as (1, 1, T, F) (H = 1, as TensorFlow runs a Conv1D)."""
        from .tflite import ir_activation_shape
        shape = tuple(1 if d is None else int(d) for d in kt.shape)
        mapped = ir_activation_shape(shape)
        if mapped is None:
            raise UnsupportedError(layer.name, f"rank-{len(shape)} tensor {shape} "
                                               "(NHWC images, (batch, T, F) sequences or (batch, features) only)")
        return mapped

    @staticmethod
    def is_sequence(kt) -> bool:
        """A Keras tensor of rank 3 (batch, T, F): held as (1, 1, T, F)."""
        return len(kt.shape) == 3

    def input(self, layer, kt) -> str:
        if id(kt) not in self.ir_of:
            raise UnsupportedError(layer.name, "input from outside the model graph (nested model?)")
        return self.ir_of[id(kt)]

    def emit(self, layer, op_type: str, inputs: list[str], out_kt, attrs=None, shape=None,
              suffix: str = "") -> Op:
        """Append an op for `layer`; out_kt None makes an intermediate read by the next op only."""
        name = self._unique_op_name(layer.name + suffix)
        out = self.new_tensor(name, shape or self.shape(layer, out_kt))
        op = Op(name, op_type, inputs, [out], dict(attrs or {}))
        self.ops.append(op)
        if out_kt is not None:
            self.ir_of[id(out_kt)] = out
        self.ir_readers[out] = 1 if out_kt is None else self.readers.get(id(out_kt), 0)
        return op

    def alias(self, in_kt, out_kt) -> None:
        """out_kt is the same IR tensor as in_kt: its readers become that tensor's readers."""
        ir = self.ir_of[id(in_kt)]
        self.ir_of[id(out_kt)] = ir
        self.ir_readers[ir] = self.ir_readers.get(ir, 0) + self.readers.get(id(out_kt), 0) - 1

    def producer(self, tensor: str) -> Op | None:
        for op in reversed(self.ops):
            if tensor in op.outputs:
                return op
        return None

    def weights(self, layer) -> list:
        """A layer's weight arrays (Keras order)."""
        return layer.get_weights()

    def operand(self, operation, value) -> str:
        """The IR tensor of a keras.ops node's argument: a KerasTensor of the graph, or a
        number / array made a float32 constant."""
        if hasattr(value, "shape") and id(value) in self.ir_of:
            return self.ir_of[id(value)]
        if type(value).__name__ == "KerasTensor":
            return self.input(operation, value)
        try:
            data = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise UnsupportedError(operation.name, f"{type(operation).__name__} of {type(value).__name__}") from None
        return self.new_tensor(f"{operation.name}.const", data.shape, data)

    def _config(self, layer) -> dict:
        return layer.get_config()

    def check_channels_last(self, layer, cfg) -> None:
        fmt = cfg.get("data_format")
        if fmt not in (None, "channels_last"):
            raise UnsupportedError(layer.name, f"data_format {fmt}")

    def activation_name(self, layer, cfg) -> str:
        act = cfg.get("activation", "linear")
        if isinstance(act, dict):   # a serialized callable
            act = act.get("config", {}).get("name") or act.get("class_name", "?")
        return str(act)

    def conv_padding(self, layer, cfg, in_hw, kernel, strides, dilation):
        padding = cfg.get("padding", "valid")
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "causal" and in_hw[0] == 1 and kernel[0] == 1:   # Conv1D: all padding before
            return (0, 0, (kernel[1] - 1) * dilation[1], 0)
        if padding != "same":
            raise UnsupportedError(layer.name, f"padding {padding!r}")
        _, pt, pb = same_padding(in_hw[0], kernel[0], strides[0], dilation[0])
        _, pl, pr = same_padding(in_hw[1], kernel[1], strides[1], dilation[1])
        return (pt, pb, pl, pr)

    def fused_activation(self, layer, op: Op, cfg, out_kt) -> None:
        """Apply the layer's own `activation=`: relu/relu6 fused into the op, any other the
        op of the unit that names it (keras_activations), after the layer's op."""
        act = self.activation_name(layer, cfg)
        if act in ("linear", None):
            return
        if act in ("relu", "relu6"):
            op.attrs["activation"] = act
            return
        unit = keras_activation_unit(act)
        if unit is None:
            raise UnsupportedError(layer.name, f"activation {act!r}")
        x = op.outputs[0]
        self.ir_of.pop(id(out_kt))    # the activation, not the op, produces the layer output
        self.ir_readers[x] = 1
        unit.from_keras_activation(self, layer, x, out_kt, suffix=f"_{act}")

    # --- layers --------------------------------------------------------------------------
    def relu_like(self, layer, ins, outs, kind: str):
        """A standalone relu/relu6: fuse into its producer when that is safe, else keep it."""
        x = self.input(layer, ins[0])
        producer = self.producer(x)
        if (producer is not None and "activation" in unit(producer.type).attrs
                and producer.attrs.get("activation", "none") == "none"
                and self.ir_readers.get(x, 0) == 1):
            producer.attrs["activation"] = kind
            self.alias(ins[0], outs[0])
            return
        self.emit(layer, kind, [x], outs[0])

    def _activation_layer(self, layer, ins, outs, cfg):
        """An Activation layer: linear vanishes; relu/relu6 fuse into their producer when
        they can; any other activation is the op of the unit that names it (keras_activations)."""
        act = self.activation_name(layer, cfg)
        if act == "linear":
            self.alias(ins[0], outs[0])
        elif act in ("relu", "relu6"):
            self.relu_like(layer, ins, outs, act)
        else:
            unit = keras_activation_unit(act)
            if unit is None:
                raise UnsupportedError(layer.name, f"activation {act!r}")
            unit.from_keras_activation(self, layer, self.input(layer, ins[0]), outs[0])

    def _batch_norm(self, layer, ins, outs, cfg):
        """Fold y = gamma * (x - mean) / sqrt(var + eps) + beta into the conv/dense before it."""
        x = self.input(layer, ins[0])
        producer = self.producer(x)
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        rank = len(ins[0].shape)          # the Keras rank (a (1, T, F) sequence is held as 4-D)
        if axis not in (-1, rank - 1):
            raise UnsupportedError(layer.name, f"BatchNormalization over axis {axis} (channels_last only)")
        gamma = np.asarray(layer.gamma.numpy() if cfg.get("scale", True) else 1.0, np.float64)
        beta = np.asarray(layer.beta.numpy() if cfg.get("center", True) else 0.0, np.float64)
        mean = np.asarray(layer.moving_mean.numpy(), np.float64)
        var = np.asarray(layer.moving_variance.numpy(), np.float64)
        factor = gamma / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
        if (producer is None or not unit(producer.type).weighted
                or producer.attrs.get("activation", "none") != "none"
                or self.ir_readers.get(x, 0) != 1):
            # not foldable (after an add, at the input...): y = x * factor + (beta - mean * factor),
            # as TensorFlow's batch_normalization computes it, one value per channel
            channels = self.tensors[x].shape[-1]
            scale = np.broadcast_to(factor, (channels,)).astype(np.float32)
            shift = np.broadcast_to(beta - mean * factor, (channels,)).astype(np.float32)
            self.scale_shift(layer, x, outs[0], scale, shift)
            return
        w_t, b_t = self.tensors[producer.inputs[1]], self.tensors[producer.inputs[2]]
        out_axis = unit(producer.type).weight_out_axis
        shape = [1] * w_t.data.ndim
        shape[out_axis] = -1
        w_t.data = (w_t.data.astype(np.float64) * factor.reshape(shape)).astype(np.float32)
        b_t.data = ((b_t.data.astype(np.float64) - mean) * factor + beta).astype(np.float32)
        self.alias(ins[0], outs[0])

    def scale_shift(self, layer, x: str, out_kt, scale: np.ndarray, shift: np.ndarray) -> None:
        """y = x * scale + shift as a mul and an add by constants (either left out when it is
        the identity): a standalone batch normalisation, Keras Rescaling."""
        steps = [(kind, c) for kind, c in (("mul", scale), ("add", shift))
                 if not np.all(c == (1.0 if kind == "mul" else 0.0))]
        if not steps:                                       # the identity: the layer vanishes
            self.ir_of[id(out_kt)] = x
            self.ir_readers[x] = self.ir_readers.get(x, 0) + self.readers.get(id(out_kt), 0) - 1
            return
        for k, (kind, c) in enumerate(steps):
            last = k == len(steps) - 1
            const = self.new_tensor(f"{layer.name}.{'scale' if kind == 'mul' else 'shift'}", c.shape, c)
            op = self.emit(layer, kind, [x, const], out_kt if last else None, {"activation": "none"},
                           shape=None if last else self.tensors[x].shape, suffix="" if last else f"_{kind}")
            x = op.outputs[0]

    def _rescaling(self, layer, ins, outs, cfg):
        """Keras Rescaling: y = x * scale + offset (scalars or one value per channel)."""
        x = self.input(layer, ins[0])
        channels = self.tensors[x].shape[-1]
        scale, offset = (np.asarray(cfg.get(k, d), np.float32) for k, d in (("scale", 1.0), ("offset", 0.0)))
        for name, v in (("scale", scale), ("offset", offset)):
            if v.size not in (1, channels):
                raise UnsupportedError(layer.name, f"Rescaling {name} of shape {v.shape} for {channels} channels")
        self.scale_shift(layer, x, outs[0], scale.reshape(-1 if scale.size > 1 else ()),
                         offset.reshape(-1 if offset.size > 1 else ()))

    # --- driver ----------------------------------------------------------------------------
    def run(self) -> Graph:
        nodes, functional = _nodes_in_order(self.model)
        for _, node_ins, _ in nodes:
            for kt in node_ins:
                self.readers[id(kt)] = self.readers.get(id(kt), 0) + 1
        for kt in functional.outputs:
            self.readers[id(kt)] = self.readers.get(id(kt), 0) + 1
        self.arguments = _operation_arguments(functional)
        for layer, _, _ in nodes:   # name an unsupported layer before any shape complaint
            kind = type(layer).__name__
            if kind != "InputLayer" and not self._known(layer, kind):
                what = "layer type" if _is_layer(layer) else "operation"
                raise UnsupportedError(layer.name, f"{what} {kind}")
        inputs = []
        for layer, ins, outs in nodes:
            kind = type(layer).__name__
            if kind == "InputLayer":
                name = self.new_tensor(layer.name, self.shape(layer, outs[0]))
                self.ir_of[id(outs[0])] = name
                self.ir_readers[name] = self.readers.get(id(outs[0]), 0)
                inputs.append(name)
                continue
            self._convert(layer, kind, ins, outs)
        if len(inputs) != 1 or len(functional.outputs) != 1:
            raise UnsupportedError(self.model.name, f"{len(inputs)} inputs and {len(functional.outputs)} "
                                                    "outputs (one of each supported)")
        out_name = self.ir_of[id(functional.outputs[0])]
        if out_name in inputs:
            raise UnsupportedError(self.model.name, "model without any op")
        return Graph(self.model.name, self.tensors, self.ops, inputs, [out_name]).validate()

    def _convert(self, layer, kind, ins, outs):
        if len(outs) != 1:
            raise UnsupportedError(layer.name, f"layer with {len(outs)} outputs")
        if not _is_layer(layer):            # a keras.ops node: its constants are in its arguments
            args, kwargs = self.arguments.get(id(outs[0]), ((), {}))
            if kwargs:
                raise UnsupportedError(layer.name, f"{kind} with keyword arguments {sorted(kwargs)}")
            keras_op_unit(kind).from_keras_op(self, layer, list(args), outs)
            return
        unit = keras_layer_unit(kind)
        want = unit.keras_inputs if unit is not None else 1
        if (len(ins) != want) if want is not None else not ins:
            raise UnsupportedError(layer.name, f"{kind} with {len(ins)} inputs")
        cfg = self._config(layer)
        handler = self._handlers().get(kind)
        if handler is not None:
            handler(layer, ins, outs, cfg)
            return
        unit = keras_layer_unit(kind)       # the op unit that imports this layer class
        if unit is None:
            raise UnsupportedError(layer.name, f"layer type {kind}")
        unit.from_keras(self, layer, ins, outs, cfg)

    def _known(self, layer, kind: str) -> bool:
        if not _is_layer(layer):
            return keras_op_unit(kind) is not None
        return kind in self._handlers() or keras_layer_unit(kind) is not None

    def _handlers(self) -> dict:
        """Layers that are not one op: they vanish or fold into the op before them."""
        return {
            "Activation": self._activation_layer, "BatchNormalization": self._batch_norm,
            "Dropout": lambda l, i, o, c: self.alias(i[0], o[0]), "Rescaling": self._rescaling,
        }


def _is_layer(operation) -> bool:
    """A Keras layer (as opposed to a keras.ops operation node such as `x + 3.0`)."""
    return isinstance(operation, _layer_class())


@functools.lru_cache(maxsize=1)
def _layer_class():
    return _import_keras().layers.Layer
