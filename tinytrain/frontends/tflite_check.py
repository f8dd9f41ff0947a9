"""Checks of a .tflite file before the frontend reads it: a truncated or corrupt file gives
one clear TinyTrainError instead of an exception from deep inside flatbuffers or numpy.

Python's flatbuffers reads lazily and verifies nothing, so the check unpacks (with the
schema's object API) every table the frontend will touch: the operator codes, the buffers
and the one subgraph. An offset or length pointing outside the file fails there. Then the
values that index or size other things are checked: tensor, buffer and opcode indices,
shapes, constant data sizes, quantization parameters.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinyTrainError

# bytes per element of the tensor types whose constant data the frontend reads
_ITEM_BYTES = {"FLOAT32": 4, "INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "FLOAT16": 2}


class CorruptModel(TinyTrainError):
    """The .tflite file is truncated, corrupt or not a TFLite model."""


def _unpack(schema, data: bytes, label: str):
    """(operator codes, buffers, subgraph) as object-API values; the model's root table."""
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise CorruptModel(f"{label}: not a .tflite model (no TFL3 file identifier; {len(data)} bytes)")
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        n_sub = model.SubgraphsLength()
        codes = [schema.OperatorCodeT.InitFromObj(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
        buffers = [schema.BufferT.InitFromObj(model.Buffers(i)) for i in range(model.BuffersLength())]
        subgraph = schema.SubGraphT.InitFromObj(model.Subgraphs(0)) if n_sub == 1 else None
    except Exception as e:   # struct.error, ValueError, TypeError...: whatever a bad offset raises
        raise CorruptModel(f"{label}: truncated or corrupt .tflite file ({len(data)} bytes; "
                           f"{type(e).__name__}: {e})") from None
    return model, n_sub, codes, buffers, subgraph


def _ints(values) -> list[int]:
    return [] if values is None else [int(v) for v in np.asarray(values).reshape(-1)]


def check_model(schema, data: bytes, label: str) -> int:
    """Raise CorruptModel naming `label` and the bad field; returns the subgraph count
    (the frontend refuses anything but one; the others are not checked)."""
    model, n_sub, codes, buffers, g = _unpack(schema, data, label)
    if g is None:
        return n_sub
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    tensors = g.tensors or []

    def bad(what: str):
        raise CorruptModel(f"{label}: corrupt .tflite file: {what}")

    def tensor_name(i: int) -> str:
        raw = tensors[i].name
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or f"tensor{i}")

    def check_index(i: int, where: str, optional: bool = False) -> None:
        if not (0 <= i < len(tensors) or (optional and i == -1)):
            bad(f"{where} refers to tensor {i} ({len(tensors)} tensors)")

    if not _ints(g.inputs) or not _ints(g.outputs):
        bad(f"the subgraph has {len(_ints(g.inputs))} inputs and {len(_ints(g.outputs))} outputs")
    for i in _ints(g.inputs) + _ints(g.outputs):
        check_index(i, "a subgraph input or output")
    for k, op in enumerate(g.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            bad(f"operator {k} has opcode index {op.opcodeIndex} ({len(codes)} operator codes)")
        for i in _ints(op.inputs):
            check_index(i, f"operator {k}", optional=True)
        if not _ints(op.outputs):
            bad(f"operator {k} has no output")
        for i in _ints(op.outputs):
            check_index(i, f"operator {k}")
    for i, t in enumerate(tensors):
        name = tensor_name(i)
        shape = _ints(t.shape)
        if any(d < 0 for d in shape):
            bad(f"tensor {name!r} has shape {shape}")
        if not 0 <= t.buffer < len(buffers):
            bad(f"tensor {name!r} refers to buffer {t.buffer} ({len(buffers)} buffers)")
        buf = buffers[t.buffer]
        if buf.offset > 1:
            if buf.offset + buf.size > len(data):
                bad(f"the data of tensor {name!r} ({buf.size} bytes at {buf.offset}) lies past the end "
                    f"of the file ({len(data)} bytes): truncated?")
            nbytes = buf.size
        else:
            nbytes = 0 if buf.data is None else len(buf.data)
        item = _ITEM_BYTES.get(type_names.get(t.type))
        if nbytes and item is not None and nbytes != math.prod(shape) * item:
            bad(f"tensor {name!r} of shape {shape} and type {type_names.get(t.type)} holds {nbytes} bytes")
        q = t.quantization
        scale = [] if q is None or q.scale is None else list(np.asarray(q.scale, np.float64).reshape(-1))
        if scale:
            zero = _ints(q.zeroPoint)
            if not all(math.isfinite(s) and s >= 0 for s in scale):
                bad(f"tensor {name!r} has quantization scales {scale[:8]}")
            if len(zero) not in (0, len(scale)):
                bad(f"tensor {name!r} has {len(scale)} scales but {len(zero)} zero points")
            if len(scale) > 1 and not (0 <= q.quantizedDimension < len(shape)
                                       and shape[q.quantizedDimension] == len(scale)):
                bad(f"tensor {name!r} of shape {shape} has {len(scale)} scales along axis "
                    f"{q.quantizedDimension}")
    return n_sub
