"""The reference int8 models (JSON graph + NPZ tensors, see ../shared/reference/README.md) -> IR.

The JSON lists layers in schedule order. Conversions done here, once:
activations NCHW -> NHWC, conv weights OIHW -> OHWI, depthwise (C,1,H,W) -> HWC;
padding is symmetric (k-1)//2; ReLU6 is the int8 clamp of the output quantization,
so no op carries a fused activation. `role` and `conv_index` are kept as op attrs:
the training compiler selects sparse-update layers by conv_index.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import TinyTrainError, UnsupportedError
from ..ir import Graph, Op, QuantParams, Tensor, conv_out_size

_CONV_OPS = ("conv2d", "depthwise_conv2d")
_SCALE_RTOL = 1e-6   # a layer's x_scale must equal the scale of the tensor it reads


def load_reference(json_path: str | Path, npz_path: str | Path | None = None) -> Graph:
    """Read `MODEL.json` and its tensors (`MODEL.npz` beside it unless given)."""
    json_path = Path(json_path)
    npz_path = Path(npz_path) if npz_path is not None else json_path.with_suffix(".npz")
    for p in (json_path, npz_path):
        if not p.is_file():
            raise TinyTrainError(f"reference model file not found: {p}")
    try:
        spec = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise TinyTrainError(f"{json_path}: not valid JSON ({e})") from None
    with np.load(npz_path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return _Builder(spec, arrays, str(json_path)).build()


class _Builder:
    def __init__(self, spec: dict, arrays: dict[str, np.ndarray], source: str):
        self.spec = spec
        self.arrays = arrays
        self.source = source
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []

    # --- helpers ---------------------------------------------------------------------
    def _field(self, layer: dict, key: str):
        if key not in layer:
            raise TinyTrainError(f"layer {layer.get('name', '?')!r}: missing field {key!r} in {self.source}")
        return layer[key]

    def _array(self, layer: str, key: str) -> np.ndarray:
        full = f"{layer}.{key}"
        if full not in self.arrays:
            raise TinyTrainError(f"layer {layer!r}: tensor {full!r} missing from the .npz")
        return self.arrays[full]

    def _activation(self, layer: dict, name_key: str = "input") -> Tensor:
        src = self._field(layer, name_key)
        if src not in self.tensors or self.tensors[src].is_const:
            raise TinyTrainError(f"layer {layer['name']!r}: input {src!r} is not computed before it")
        return self.tensors[src]

    def _check_input_quant(self, layer: dict, x: Tensor, scale_key: str, zero_key: str) -> None:
        """The JSON repeats the input quantization; it must agree with the producer's."""
        scale, zero = float(layer[scale_key]), int(layer[zero_key])
        if not np.isclose(x.scale, scale, rtol=_SCALE_RTOL, atol=0) or x.zero_point != zero:
            raise TinyTrainError(
                f"layer {layer['name']!r}: {scale_key}/{zero_key} ({scale}, {zero}) differ from those "
                f"of its input {x.name!r} ({x.scale}, {x.zero_point})")

    def _out(self, name: str, shape, scale: float, zero: int) -> Tensor:
        t = Tensor(name, tuple(shape), "int8", QuantParams.per_tensor(scale, zero))
        self.tensors[name] = t
        return t

    def _weights(self, name: str, w: np.ndarray, b: np.ndarray, w_scales: np.ndarray,
                 x_scale: float, axis: int) -> tuple[str, str]:
        out_ch = w.shape[axis]
        if w.dtype != np.int8 or b.dtype != np.int32:
            raise TinyTrainError(f"layer {name!r}: weight must be int8 and bias int32 "
                                 f"(got {w.dtype}, {b.dtype})")
        w_scales = np.asarray(w_scales, dtype=np.float64).reshape(-1)
        if w_scales.shape != (out_ch,) or b.shape != (out_ch,):
            raise TinyTrainError(f"layer {name!r}: {out_ch} output channels but {w_scales.size} "
                                 f"weight scales and {b.size} biases")
        zeros = np.zeros(out_ch, dtype=np.int64)
        wt = Tensor(f"{name}.weight", w.shape, "int8", QuantParams(w_scales, zeros, axis),
                    np.ascontiguousarray(w))
        bt = Tensor(f"{name}.bias", b.shape, "int32", QuantParams(x_scale * w_scales, zeros, 0),
                    np.ascontiguousarray(b))
        self.tensors[wt.name] = wt
        self.tensors[bt.name] = bt
        return wt.name, bt.name

    # --- layers ----------------------------------------------------------------------
    def _conv(self, layer: dict) -> None:
        name, op_type = layer["name"], layer["op"]
        x = self._activation(layer)
        self._check_input_quant(layer, x, "x_scale", "x_zero")
        _, h, w_in, cin = x.shape
        k, stride = int(self._field(layer, "kernel")), int(self._field(layer, "stride"))
        groups = int(layer.get("groups", 1))
        cout = int(self._field(layer, "out_channels"))
        pad = (k - 1) // 2
        if int(layer.get("padding", pad)) != pad:
            raise UnsupportedError(name, f"padding {layer['padding']} (expected (k-1)//2 = {pad})")
        w = self._array(name, "weight")
        if op_type == "conv2d":
            if groups != 1:
                raise UnsupportedError(name, f"groups {groups} on conv2d")
            if w.shape != (cout, cin, k, k):
                raise TinyTrainError(f"layer {name!r}: weight shape {w.shape}, expected {(cout, cin, k, k)}")
            w_ir, axis = w.transpose(0, 2, 3, 1), 0              # OIHW -> OHWI
        else:
            if groups != cin or cout != cin:
                raise UnsupportedError(name, f"depthwise with groups {groups}, {cin} -> {cout} channels "
                                             "(depth multiplier 1 only)")
            if w.shape != (cout, 1, k, k):
                raise TinyTrainError(f"layer {name!r}: weight shape {w.shape}, expected {(cout, 1, k, k)}")
            w_ir, axis = w[:, 0].transpose(1, 2, 0), 2           # (C,1,H,W) -> HWC
        oh = conv_out_size(h, k, stride, pad, pad)
        ow = conv_out_size(w_in, k, stride, pad, pad)
        if "out_hw" in layer and int(layer["out_hw"]) != oh:
            raise TinyTrainError(f"layer {name!r}: out_hw {layer['out_hw']} but the input gives {oh}")
        w_name, b_name = self._weights(name, w_ir, self._array(name, "bias"),
                                       self._array(name, "w_scales"), x.scale, axis)
        y = self._out(name, (1, oh, ow, cout), layer["y_scale"], layer["y_zero"])
        attrs = {"stride": (stride, stride), "pad": (pad, pad, pad, pad), "dilation": (1, 1),
                 "activation": "none", "conv_index": int(self._field(layer, "conv_index"))}
        if "role" in layer:
            attrs["role"] = layer["role"]
        self.ops.append(Op(name, op_type, [x.name, w_name, b_name], [y.name], attrs))

    def _add(self, layer: dict) -> None:
        name = layer["name"]
        srcs = self._field(layer, "input")
        if not isinstance(srcs, list) or len(srcs) != 2:
            raise UnsupportedError(name, f"add with inputs {srcs!r} (exactly two expected)")
        main = self._activation({"name": name, "input": srcs[0]})
        short = self._activation({"name": name, "input": srcs[1]})
        self._check_input_quant(layer, short, "shortcut_scale", "shortcut_zero")
        if main.shape != short.shape:
            raise UnsupportedError(name, f"add of shapes {main.shape} and {short.shape} (no broadcasting)")
        y = self._out(name, main.shape, layer["y_scale"], layer["y_zero"])
        attrs = {"activation": "none"}
        if "role" in layer:
            attrs["role"] = layer["role"]
        self.ops.append(Op(name, "add", [main.name, short.name], [y.name], attrs))

    def _global_avg_pool(self, layer: dict) -> None:
        name = layer["name"]
        x = self._activation(layer)
        y = Tensor(name, (1, 1, 1, x.shape[3]), "int8", QuantParams.per_tensor(x.scale, x.zero_point))
        self.tensors[name] = y
        self.ops.append(Op(name, "global_avg_pool", [x.name], [y.name], {}))

    def _fully_connected(self, layer: dict) -> None:
        name = layer["name"]
        x = self._activation(layer)
        self._check_input_quant(layer, x, "x_scale", "x_zero")
        cin, cout = int(self._field(layer, "in_features")), int(self._field(layer, "out_features"))
        if x.size != cin:
            raise TinyTrainError(f"layer {name!r}: in_features {cin} but its input has {x.size} values")
        w = self._array(name, "weight")
        if w.shape != (cout, cin):
            raise TinyTrainError(f"layer {name!r}: weight shape {w.shape}, expected {(cout, cin)}")
        w_name, b_name = self._weights(name, w, self._array(name, "bias"),
                                       self._array(name, "w_scales"), x.scale, 0)
        y = self._out(name, (1, cout), layer["y_scale"], layer["y_zero"])
        attrs = {"activation": "none"}
        if "role" in layer:
            attrs["role"] = layer["role"]
        self.ops.append(Op(name, "fully_connected", [x.name, w_name, b_name], [y.name], attrs))

    # --- whole graph -------------------------------------------------------------------
    def build(self) -> Graph:
        spec = self.spec
        inp = spec.get("input")
        if not isinstance(inp, dict) or "shape" not in inp:
            raise TinyTrainError(f"{self.source}: missing 'input' description")
        if inp.get("dtype", "int8") != "int8":
            raise UnsupportedError("input", f"input dtype {inp['dtype']!r}")
        shape = tuple(int(d) for d in inp["shape"])
        if len(shape) != 4 or shape[0] != 1:
            raise UnsupportedError("input", f"input shape {shape} (batch-1 NCHW expected)")
        n, c, h, w = shape
        self._out("input", (n, h, w, c), inp["scale"], inp["zero"])
        handlers = {"conv2d": self._conv, "depthwise_conv2d": self._conv, "add": self._add,
                    "global_avg_pool": self._global_avg_pool, "fully_connected": self._fully_connected}
        layers = spec.get("layers") or []
        if not layers:
            raise TinyTrainError(f"{self.source}: no layers")
        for layer in layers:
            name = layer.get("name")
            if not name or name in self.tensors:
                raise TinyTrainError(f"{self.source}: layer name {name!r} missing or duplicated")
            handler = handlers.get(layer.get("op"))
            if handler is None:
                raise UnsupportedError(name, f"op {layer.get('op')!r}")
            handler(layer)
        n_convs = sum(op.type in _CONV_OPS for op in self.ops)
        if "num_convs" in spec and int(spec["num_convs"]) != n_convs:
            raise TinyTrainError(f"{self.source}: num_convs {spec['num_convs']} but {n_convs} convolutions")
        graph = Graph(spec.get("name", Path(self.source).stem), self.tensors, self.ops,
                      ["input"], [self.ops[-1].outputs[0]])
        return graph.validate()
