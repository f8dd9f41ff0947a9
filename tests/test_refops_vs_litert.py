"""tinytrain.refops against LiteRT running TFLite's REFERENCE int8 kernels, element for
element, on single-op models converted from Keras layers (tests/tflite_models.py).

The IR of each model is built here by hand from the interpreter's tensor details (weights,
scales, zero points) and the Keras layer's configuration; parameters then go through
tinytrain.quant exactly as in a compiled model."""
import zlib

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from tinytrain.ir import Graph, Op, QuantParams, Tensor, same_padding   # noqa: E402
from tinytrain.refops import run_graph                                  # noqa: E402

import tflite_models as tm                                               # noqa: E402

N_SAMPLES = 120
ACTIVATIONS = {"linear": "none", "relu": "relu", "relu6": "relu6"}


def _quant(detail, axis=None) -> QuantParams | None:
    qp = detail["quantization_parameters"]
    if len(qp["scales"]) == 0:
        return None
    if len(qp["scales"]) == 1:
        return QuantParams.per_tensor(float(qp["scales"][0]), int(qp["zero_points"][0]))
    return QuantParams(qp["scales"].astype(np.float64), qp["zero_points"], axis=axis)


def _pads(cfg, in_hw, kernel, strides, dilation=(1, 1)):
    if cfg["padding"] == "valid":
        return (0, 0, 0, 0)
    _, t, b = same_padding(in_hw[0], kernel[0], strides[0], dilation[0])
    _, l, r = same_padding(in_hw[1], kernel[1], strides[1], dilation[1])
    return (t, b, l, r)


def build_graph(interp, spec: dict, layer) -> Graph:
    """The IR graph of a single-op model (tensor names are the TFLite tensor indices)."""
    ops = interp._get_ops_details()
    assert [o["op_name"] for o in ops] == [spec["op"]], [o["op_name"] for o in ops]
    op = ops[0]
    det = {d["index"]: d for d in interp.get_tensor_details()}
    ins, out = [int(i) for i in op["inputs"]], int(op["outputs"][0])
    cfg = layer.get_config()
    tensors: dict[str, Tensor] = {}

    def act_tensor(i, shape=None):
        d = det[i]
        tensors[str(i)] = Tensor(str(i), tuple(shape or d["shape"]), "int8", _quant(d))
        return str(i)

    kind = spec["op"]
    x = act_tensor(ins[0])
    inputs, attrs = [x], {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        w_det, b_det = det[ins[1]], det[ins[2]]
        w = interp.get_tensor(ins[1])
        axis = 0
        if kind == "DEPTHWISE_CONV_2D":
            assert w.shape[0] == 1
            w, axis = w[0], 2                       # 1HWC -> HWC
        tensors["w"] = Tensor("w", w.shape, "int8", _quant(w_det, axis), data=w)
        b = interp.get_tensor(ins[2])
        tensors["b"] = Tensor("b", b.shape, "int32", _quant(b_det, 0), data=b)
        inputs += ["w", "b"]
        attrs["activation"] = ACTIVATIONS[cfg["activation"]]
        if kind != "FULLY_CONNECTED":
            in_hw = tensors[x].shape[1:3]
            kernel = tuple(cfg["kernel_size"])
            strides, dil = tuple(cfg["strides"]), tuple(cfg["dilation_rate"])
            attrs.update(stride=strides, dilation=dil, pad=_pads(cfg, in_hw, kernel, strides, dil))
        op_type = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d",
                   "FULLY_CONNECTED": "fully_connected"}[kind]
    elif kind == "ADD":
        inputs.append(act_tensor(ins[1]))
        op_type, attrs = "add", {"activation": "none"}
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kernel, strides = tuple(cfg["pool_size"]), tuple(cfg["strides"])
        attrs = dict(kernel=kernel, stride=strides, activation="none",
                     pad=_pads(cfg, tensors[x].shape[1:3], kernel, strides))
        op_type = "avg_pool2d" if kind == "AVERAGE_POOL_2D" else "max_pool2d"
    elif kind == "MEAN":
        np.testing.assert_array_equal(interp.get_tensor(ins[1]), [1, 2])
        op_type = "global_avg_pool"
    elif kind == "SOFTMAX":
        op_type, attrs = "softmax", {"beta": 1.0}
    elif kind == "PAD":
        (t, b), (l, r) = cfg["padding"]
        op_type, attrs = "pad", {"pad": (t, b, l, r)}
    elif kind in ("RELU", "RELU6"):
        op_type = kind.lower()
    else:
        raise AssertionError(kind)
    out_shape = tuple(det[out]["shape"])
    if op_type == "global_avg_pool":
        out_shape = (1, 1, 1, out_shape[-1])
    y = act_tensor(out, out_shape)
    graph_inputs = [n for n in inputs if not tensors[n].is_const]
    return Graph(spec["op"].lower(), tensors, [Op("op", op_type, inputs, [y], attrs)],
                 graph_inputs, [y]).validate()


@pytest.mark.parametrize("name", sorted(tm.SINGLE_OP_SPECS))
def test_refops_equal_litert_reference(name):
    data, model = tm.single_op_tflite(name)
    interp = tm.reference_interpreter(data)
    spec = tm.SINGLE_OP_SPECS[name]
    graph = build_graph(interp, spec, model.layers[-1])
    in_details = interp.get_input_details()
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    outputs = []
    for s in range(N_SAMPLES):
        xs = [rng.integers(-128, 128, size=d["shape"], dtype=np.int8) for d in in_details]
        if s == 0:
            xs = [np.full(d["shape"], -128, np.int8) for d in in_details]
        elif s == 1:
            xs = [np.full(d["shape"], 127, np.int8) for d in in_details]
        want = tm.invoke(interp, xs)
        feeds = {str(d["index"]): x for d, x in zip(in_details, xs)}
        got = run_graph(graph, feeds)[graph.outputs[0]]
        np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=f"{name}, sample {s}")
        outputs.append(want)
    # the comparison means something only if outputs vary
    assert len(np.unique(np.concatenate([o.ravel() for o in outputs]))) > 10
