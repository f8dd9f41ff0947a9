"""Test helper: Keras layers -> full-integer int8 .tflite bytes, and LiteRT interpreters
running TFLite's REFERENCE kernels (the semantics tinytrain's int8 code reproduces).

    data = int8_tflite(model, calibration)            # calibration: list of arrays, one per input
    interp = reference_interpreter(data)
    y = invoke(interp, [x_int8])                      # x_int8 with the batch axis

`single_op_tflite(name)` builds and converts the single-op models of SINGLE_OP_SPECS once
per session (lru_cache).
"""
from __future__ import annotations

import functools
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def int8_tflite(model, calibration: list[np.ndarray]) -> bytes:
    """Full-integer conversion (int8 inputs and outputs) of a batch-1 Keras model with one
    or more inputs; calibration[i] holds samples (N, ...) of input i."""
    import tensorflow as tf
    n = len(calibration[0])

    def representative():
        for i in range(n):
            yield [c[i:i + 1].astype(np.float32) for c in calibration]

    # from_keras_model (not a traced concrete function): the latter left READ_VARIABLE ops
    # in models with weights, which then fail during calibration.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def reference_interpreter(model_content: bytes):
    """A LiteRT interpreter using TFLite's reference (not optimized) kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=model_content,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    return interp


def invoke(interp, inputs: list[np.ndarray]) -> np.ndarray:
    for detail, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], np.asarray(x, dtype=detail["dtype"]).reshape(detail["shape"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def op_types(interp) -> list[str]:
    return [op["op_name"] for op in interp._get_ops_details()]


# --- single-op models ------------------------------------------------------------------------------

def _build(spec: dict):
    import keras
    keras.utils.set_random_seed(spec.get("seed", 0))
    shapes = spec["inputs"]
    ins = [keras.Input(s) for s in shapes]
    layer = spec["layer"](keras)
    out = layer(ins if len(ins) > 1 else ins[0])
    model = keras.Model(ins, out)
    rng = np.random.default_rng(spec.get("seed", 0))
    for w in layer.weights:        # non-trivial biases (Keras initializes them to 0)
        if "bias" in w.path:
            w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32))
    ranges = spec.get("ranges", [(-1.0, 1.0)] * len(shapes))
    calibration = [rng.uniform(lo, hi, size=(64, *s)).astype(np.float32) for s, (lo, hi) in zip(shapes, ranges)]
    return model, calibration


# name -> spec: inputs (shapes without batch), layer factory (keras -> layer), expected TFLite op
SINGLE_OP_SPECS = {
    "conv_valid_s1_relu": dict(inputs=[(9, 9, 3)], op="CONV_2D", layer=lambda k: k.layers.Conv2D(
        5, 3, padding="valid", activation="relu")),
    "conv_same_s2_relu6": dict(inputs=[(8, 8, 3)], op="CONV_2D", layer=lambda k: k.layers.Conv2D(
        6, 3, strides=2, padding="same", activation="relu6")),
    "conv_same_s1_none": dict(inputs=[(7, 6, 5)], op="CONV_2D", layer=lambda k: k.layers.Conv2D(
        7, (3, 2), padding="same")),
    "conv_same_s2_5x5": dict(inputs=[(9, 9, 2)], op="CONV_2D", layer=lambda k: k.layers.Conv2D(
        4, 5, strides=2, padding="same")),
    # (no dilated conv: the converter lowers it to SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND)
    "dwconv_same_s1_relu6": dict(inputs=[(8, 8, 5)], op="DEPTHWISE_CONV_2D", layer=lambda k: k.layers.DepthwiseConv2D(
        3, padding="same", activation="relu6")),
    "dwconv_same_s2_none": dict(inputs=[(9, 8, 3)], op="DEPTHWISE_CONV_2D", layer=lambda k: k.layers.DepthwiseConv2D(
        3, strides=2, padding="same")),
    "dense_relu": dict(inputs=[(20,)], op="FULLY_CONNECTED", layer=lambda k: k.layers.Dense(7, activation="relu")),
    "dense_none": dict(inputs=[(33,)], op="FULLY_CONNECTED", layer=lambda k: k.layers.Dense(10)),
    "add": dict(inputs=[(4, 4, 3), (4, 4, 3)], op="ADD", ranges=[(-1.0, 1.0), (-3.0, 0.5)],
                layer=lambda k: k.layers.Add()),
    "avg_pool_same": dict(inputs=[(7, 7, 3)], op="AVERAGE_POOL_2D", layer=lambda k: k.layers.AveragePooling2D(
        3, strides=2, padding="same")),
    "avg_pool_valid": dict(inputs=[(8, 6, 2)], op="AVERAGE_POOL_2D", layer=lambda k: k.layers.AveragePooling2D(2)),
    "max_pool_same": dict(inputs=[(7, 7, 3)], op="MAX_POOL_2D", layer=lambda k: k.layers.MaxPooling2D(
        3, strides=2, padding="same")),
    "global_avg_pool": dict(inputs=[(5, 5, 6)], op="MEAN", layer=lambda k: k.layers.GlobalAveragePooling2D()),
    "global_avg_pool_keepdims": dict(inputs=[(3, 4, 7)], op="MEAN", ranges=[(-2.0, 0.5)],
                                     layer=lambda k: k.layers.GlobalAveragePooling2D(keepdims=True)),
    "softmax": dict(inputs=[(10,)], op="SOFTMAX", ranges=[(-6.0, 6.0)], layer=lambda k: k.layers.Softmax()),
    "zero_padding": dict(inputs=[(4, 5, 3)], op="PAD", layer=lambda k: k.layers.ZeroPadding2D(((1, 2), (0, 1)))),
    "relu": dict(inputs=[(6, 6, 2)], op="RELU", layer=lambda k: k.layers.ReLU()),
    "relu6": dict(inputs=[(6, 6, 2)], op="RELU6", ranges=[(-4.0, 9.0)], layer=lambda k: k.layers.ReLU(max_value=6.0)),
}


@functools.lru_cache(maxsize=None)
def single_op_tflite(name: str) -> tuple[bytes, object]:
    """(tflite bytes, keras model) of SINGLE_OP_SPECS[name], converted once per session."""
    model, calibration = _build(SINGLE_OP_SPECS[name])
    return int8_tflite(model, calibration), model


# --- hand-built models (quantization the converter would not choose) -----------------------------

# options tables not named after their operator (the rest: ADD -> AddOptions, LEAKY_RELU ->
# LeakyReluOptions, TRANSPOSE_CONV -> TransposeConvOptions, ...)
_OPTIONS_TABLES = {"MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
                   "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions"}
_NP_TYPES = {"INT8": np.int8, "INT32": np.int32, "FLOAT32": np.float32, "INT64": np.int64}


def op_tflite(op: str, inputs: list[dict | None], output: dict, options: dict | None = None,
              version: int = 1) -> bytes:
    """A one-op flatbuffer of builtin `op` with exactly the given tensors, for reaching each
    branch of a LiteRT kernel on purpose. Each tensor is a dict: shape; type ("INT8" unless
    given: "FLOAT32", "INT32", "INT64"); q = (scale, zero_point), or (scales, zero_points,
    axis) per channel, none for a float or index tensor; `data` for a constant. Inputs without
    data are the model's inputs; an input None is an absent optional operand. `options`: the
    fields of the op's options table by their object-API names (AddOptions:
    fusedActivationFunction; ConcatenationOptions: axis; TransposeConvOptions: padding,
    strideH, ...; ReducerOptions: keepDims); the table is written, with its defaults, whenever
    the schema has one for `op`."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    buffers = [s.BufferT()]
    tensors = []

    def add(spec: dict, name: str) -> int:
        ttype = spec.get("type", "INT8")
        t = s.TensorT()
        t.name, t.shape = name, [int(d) for d in spec["shape"]]
        t.type = getattr(s.TensorType, ttype)
        buf = s.BufferT()
        if spec.get("data") is not None:
            buf.data = np.ascontiguousarray(np.asarray(spec["data"], _NP_TYPES[ttype]).reshape(t.shape)).tobytes()
        buffers.append(buf)
        t.buffer = len(buffers) - 1
        q = spec.get("q")
        if q is not None:
            t.quantization = s.QuantizationParametersT()
            t.quantization.scale = [float(v) for v in np.atleast_1d(q[0])]
            t.quantization.zeroPoint = [int(v) for v in np.atleast_1d(q[1])]
            if len(q) > 2:
                t.quantization.quantizedDimension = int(q[2])
        tensors.append(t)
        return len(tensors) - 1

    in_idx = [-1 if spec is None else add(spec, f"in{i}") for i, spec in enumerate(inputs)]
    out_idx = add(output, "out")
    code = s.OperatorCodeT()
    builtin = getattr(s.BuiltinOperator, op)
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    operator = s.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, in_idx, [out_idx]
    table = _OPTIONS_TABLES.get(op, "".join(w.capitalize() for w in op.split("_")) + "Options")
    if hasattr(s.BuiltinOptions, table):
        operator.builtinOptionsType = getattr(s.BuiltinOptions, table)
        operator.builtinOptions = getattr(s, table + "T")()
        for k, v in (options or {}).items():
            if not hasattr(operator.builtinOptions, k):
                raise ValueError(f"{table} has no field {k!r}")
            setattr(operator.builtinOptions, k, v)
    elif options:
        raise ValueError(f"{op} has no options table ({table})")
    graph = s.SubGraphT()
    graph.tensors, graph.operators = tensors, [operator]
    graph.inputs = [i for i, spec in zip(in_idx, inputs) if spec is not None and spec.get("data") is None]
    graph.outputs = [out_idx]
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def mean_tflite(in_shape, axes, keep_dims: bool, in_q: tuple[float, int], out_q: tuple[float, int]) -> bytes:
    """A one-op int8 MEAN with exactly the given (scale, zero point) of input and output:
    LiteRT's int8 MEAN picks its code path from keep_dims, the axes and whether the two
    quantizations are equal, so each path can be reached on purpose."""
    axes = [a % len(in_shape) for a in axes]
    out_shape = ([1 if i in axes else d for i, d in enumerate(in_shape)] if keep_dims
                 else [d for i, d in enumerate(in_shape) if i not in axes])
    return op_tflite("MEAN", [dict(shape=in_shape, q=in_q), dict(shape=[len(axes)], type="INT32", data=axes)],
                     dict(shape=out_shape, q=out_q), {"keepDims": keep_dims}, version=2)


def unary_tflite(op: str, shape, in_q: tuple[float, int], out_q: tuple[float, int]) -> bytes:
    """A one-op int8 elementwise operator (HARD_SWISH, LOGISTIC, ...) with exactly the given
    (scale, zero point) of input and output."""
    return op_tflite(op, [dict(shape=shape, q=in_q)], dict(shape=shape, q=out_q))


def reference_runnable(data: bytes) -> bytes:
    """`data` with its TILE operators marked version 2: LiteRT's BUILTIN_REF resolver registers
    the same kernel as the default one (Register_TILE()) but only for versions 1-2, while the
    converter writes int8 TILE as version 3 (nearest-neighbour UpSampling2D). Only the version
    number changes; without this the reference interpreter refuses the model."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    tiles = [c for c in model.operatorCodes
             if max(c.builtinCode, c.deprecatedBuiltinCode) == s.BuiltinOperator.TILE and c.version > 2]
    if not tiles:
        return data
    for c in tiles:
        c.version = 2
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
