"""`--num-classes N`: replace the classifier by a fresh N-class head (transfer learning).

The reference models classify 1000 ImageNet classes (160 KB of int8 weights for MCUNet);
the paper trains on transfer datasets with a new, smaller head. The new head is
initialised like Keras' glorot-uniform; int8 heads get per-channel scales that cover the
initial range, an int32 zero bias, and keep the output quantization of the old head.
"""
from __future__ import annotations

import copy

import numpy as np

from ..errors import TinyTrainError
from ..ir import Graph, QuantParams, Tensor
from .scheme import weighted_layers


def replace_classifier(graph: Graph, num_classes: int, seed: int = 0) -> Graph:
    """A copy of `graph` whose final fully_connected layer has `num_classes` outputs."""
    if num_classes < 1:
        raise TinyTrainError(f"--num-classes: expected a positive number of classes, got {num_classes}")
    _, cls = weighted_layers(graph)
    if cls is None:
        raise TinyTrainError(f"model {graph.name!r}: --num-classes needs a fully_connected classifier "
                             "as the last layer with weights")
    g = copy.deepcopy(graph)
    op = next(o for o in g.ops if o.name == cls.name)
    w_old, b_old = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
    n_in = w_old.shape[1]
    rng = np.random.default_rng(seed)
    limit = np.sqrt(6.0 / (n_in + num_classes))
    w_real = rng.uniform(-limit, limit, size=(num_classes, n_in))
    if w_old.dtype == "int8":
        x = g.tensors[op.inputs[0]]
        w_scale = np.maximum(np.abs(w_real).max(axis=1), 1e-8) / 127.0
        wq = np.clip(np.round(w_real / w_scale[:, None]), -127, 127).astype(np.int8)
        g.tensors[w_old.name] = Tensor(w_old.name, wq.shape, "int8",
                                       QuantParams(w_scale, np.zeros(num_classes), axis=0), wq)
        g.tensors[b_old.name] = Tensor(b_old.name, (num_classes,), "int32",
                                       QuantParams(w_scale * x.scale, np.zeros(num_classes), axis=0),
                                       np.zeros(num_classes, np.int32))
    else:
        g.tensors[w_old.name] = Tensor(w_old.name, w_real.shape, "float32", None,
                                       w_real.astype(np.float32))
        g.tensors[b_old.name] = Tensor(b_old.name, (num_classes,), "float32", None,
                                       np.zeros(num_classes, np.float32))
    # the classifier's output and everything after it (softmax, reshape) change width
    stack = [op.outputs[0]]
    while stack:
        t = g.tensors[stack.pop()]
        t.shape = t.shape[:-1] + (num_classes,)
        for c in g.consumers(t.name):
            stack.extend(c.outputs)
    g.name = f"{graph.name}-{num_classes}cls"
    return g.validate()
