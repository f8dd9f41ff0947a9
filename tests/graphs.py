"""Test helper: small IR graphs for the training tests (float and int8), built directly in
numpy, their TensorFlow twins (the same math with tf.nn ops) for GradientTape checks, and
the int8 versions and inputs of those graphs."""
from __future__ import annotations

import json

import numpy as np

from tinytrain.ir import Graph, Op, QuantParams, Tensor, conv_out_size

F32 = np.float32


class GraphBuilder:
    def __init__(self, name: str, input_shape, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.tensors = {"input": Tensor("input", input_shape, "float32")}
        self.ops: list[Op] = []
        self.last = "input"

    def _param(self, name, shape, scale):
        data = (self.rng.standard_normal(shape) * scale).astype(F32)
        self.tensors[name] = Tensor(name, shape, "float32", data=data)
        return name

    def _out(self, name, shape):
        self.tensors[name] = Tensor(name, shape, "float32")
        return name

    def conv(self, name, cout, k=3, stride=1, pad=1, act="relu", depthwise=False):
        _, h, w, cin = self.tensors[self.last].shape
        oh = conv_out_size(h, k, stride, pad, pad)
        ow = conv_out_size(w, k, stride, pad, pad)
        if depthwise:
            cout = cin
            wt = self._param(f"{name}.weight", (k, k, cin), 0.5)
        else:
            wt = self._param(f"{name}.weight", (cout, k, k, cin), 1.0 / np.sqrt(k * k * cin))
        b = self._param(f"{name}.bias", (cout,), 0.1)
        out = self._out(name, (1, oh, ow, cout))
        self.ops.append(Op(name, "depthwise_conv2d" if depthwise else "conv2d", [self.last, wt, b], [out],
                           {"stride": (stride, stride), "pad": (pad, pad, pad, pad), "dilation": (1, 1),
                            "activation": act}))
        self.last = out
        return out

    def dense(self, name, n, act="none"):
        i = self.tensors[self.last].shape[-1]
        wt = self._param(f"{name}.weight", (n, i), 1.0 / np.sqrt(i))
        b = self._param(f"{name}.bias", (n,), 0.1)
        out = self._out(name, (1, n))
        self.ops.append(Op(name, "fully_connected", [self.last, wt, b], [out], {"activation": act}))
        self.last = out
        return out

    def unary(self, name, type_, shape=None, **attrs):
        shape = shape or self.tensors[self.last].shape
        out = self._out(name, shape)
        self.ops.append(Op(name, type_, [self.last], [out], attrs))
        self.last = out
        return out

    def pool(self, name, kind, k=2, stride=2, pad=(0, 0, 0, 0)):
        _, h, w, c = self.tensors[self.last].shape
        oh = conv_out_size(h, k, stride, pad[0], pad[1])
        ow = conv_out_size(w, k, stride, pad[2], pad[3])
        return self.unary(name, f"{kind}_pool2d", (1, oh, ow, c), kernel=(k, k), stride=(stride, stride),
                          pad=pad, activation="none")

    def gap_flatten(self):
        c = self.tensors[self.last].shape[-1]
        self.unary("gap", "global_avg_pool", (1, 1, 1, c))
        return self.unary("flatten", "reshape", (1, c))

    def add(self, name, a, b, act="none"):
        out = self._out(name, self.tensors[a].shape)
        self.ops.append(Op(name, "add", [a, b], [out], {"activation": act}))
        self.last = out
        return out

    def const(self, name, data):
        """A float32 constant operand (a constant input of an elementwise op)."""
        data = np.asarray(data, F32)
        self.tensors[name] = Tensor(name, data.shape, "float32", data=data)
        return name

    def binary(self, name, type_, a, b, act=None, **attrs):
        """An elementwise op of two operands (activations or constants), broadcast."""
        from tinytrain.ops.elementwise import broadcast_shape
        shape = broadcast_shape(self.tensors[a].shape, self.tensors[b].shape)
        out = self._out(name, shape)
        if act is not None:
            attrs["activation"] = act
        self.ops.append(Op(name, type_, [a, b], [out], attrs))
        self.last = out
        return out

    def concat(self, name, inputs, axis=-1):
        shapes = [self.tensors[t].shape for t in inputs]
        ax = axis % len(shapes[0])
        shape = list(shapes[0])
        shape[ax] = sum(s[ax] for s in shapes)
        out = self._out(name, tuple(shape))
        self.ops.append(Op(name, "concatenation", list(inputs), [out], {"axis": axis}))
        self.last = out
        return out

    def build(self, name="g") -> Graph:
        return Graph(name, self.tensors, self.ops, ["input"], [self.last]).validate()


def mlp(seed=0) -> Graph:
    b = GraphBuilder("mlp", (1, 12), seed)
    b.dense("fc1", 16, "relu")
    b.dense("fc2", 8, "relu6")
    b.dense("fc3", 5)
    return b.build("mlp")


def cnn(seed=0) -> Graph:
    b = GraphBuilder("cnn", (1, 8, 8, 3), seed)
    b.conv("conv1", 6, stride=1)
    b.pool("pool1", "max")
    b.conv("conv2", 8, stride=2, act="relu6")
    b.pool("pool2", "avg", k=3, stride=1, pad=(1, 1, 1, 1))
    b.gap_flatten()
    b.dense("fc", 4)
    return b.build("cnn")


def dwsep(seed=0) -> Graph:
    b = GraphBuilder("dwsep", (1, 8, 8, 4), seed)
    b.conv("conv1", 8, stride=2, act="relu6")
    b.conv("dw1", 0, depthwise=True, act="relu6")
    b.conv("pw1", 12, k=1, pad=0, act="relu")
    b.unary("pad1", "pad", (1, 6, 6, 12), pad=(1, 1, 1, 1))
    b.conv("dw2", 0, stride=2, pad=0, depthwise=True, act="none")
    b.unary("relu", "relu6")
    b.gap_flatten()
    b.dense("fc", 6)
    b.unary("softmax", "softmax", beta=1.0)
    return b.build("dwsep")


def residual(seed=0) -> Graph:
    b = GraphBuilder("residual", (1, 6, 6, 4), seed)
    stem = b.conv("stem", 8, act="relu")
    b.conv("expand", 16, k=1, pad=0, act="relu6")
    b.conv("dw", 0, depthwise=True, act="relu6")
    proj = b.conv("project", 8, k=1, pad=0, act="none")
    b.add("add", proj, stem, act="relu")
    b.gap_flatten()
    b.dense("fc", 5)
    return b.build("residual")


MODELS = {"mlp": mlp, "cnn": cnn, "dwsep": dwsep, "residual": residual}


# --- the TensorFlow twin -------------------------------------------------------------------

def tf_forward(graph: Graph, x, variables: dict, select: dict | None = None):
    """Forward of `graph` with tf.nn ops; variables: constant name -> tf.Variable. select: op
    name -> where a maximum / minimum takes its first operand (tf.where: that branch's
    gradient, e.g. the branch a half-precision forward took)."""
    import tensorflow as tf
    vals = {"input": tf.constant(x.reshape(graph.tensors["input"].shape))}
    for op in graph.ops:
        a = op.attrs
        v = vals[op.inputs[0]] if op.inputs[0] in vals else variables[op.inputs[0]]
        if op.type in ("conv2d", "depthwise_conv2d"):
            t, bo, l, r = a["pad"]
            v = tf.pad(v, [[0, 0], [t, bo], [l, r], [0, 0]])
            w = variables[op.inputs[1]]
            s = [1, a["stride"][0], a["stride"][1], 1]
            if op.type == "conv2d":
                y = tf.nn.conv2d(v, tf.transpose(w, [1, 2, 3, 0]), s, "VALID")
            else:
                y = tf.nn.depthwise_conv2d(v, w[:, :, :, None], s, "VALID")
            y = y + variables[op.inputs[2]]
        elif op.type == "fully_connected":
            y = tf.matmul(v, variables[op.inputs[1]], transpose_b=True) + variables[op.inputs[2]]
        elif op.type in ("add", "sub", "mul", "maximum", "minimum", "prelu"):
            w = vals[op.inputs[1]] if op.inputs[1] in vals else variables[op.inputs[1]]
            v = vals[op.inputs[0]] if op.inputs[0] in vals else variables[op.inputs[0]]
            y = {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "maximum": tf.maximum,
                 "minimum": tf.minimum, "prelu": lambda x, a: tf.where(x >= 0, x, x * a)}[op.type](v, w)
            if select and op.name in select:
                y = tf.where(select[op.name], v, w)
        elif op.type == "logistic":
            y = tf.sigmoid(v)
        elif op.type == "tanh":
            y = tf.tanh(v)
        elif op.type == "leaky_relu":
            y = tf.nn.leaky_relu(v, a["alpha"])
        elif op.type == "hard_swish":
            y = v * tf.nn.relu6(v + 3.0) / 6.0
        elif op.type == "concatenation":
            y = tf.concat([vals[t] if t in vals else variables[t] for t in op.inputs], axis=a["axis"])
        elif op.type in ("max_pool2d", "avg_pool2d"):
            padding = "SAME" if any(a["pad"]) else "VALID"
            f = tf.nn.max_pool2d if op.type == "max_pool2d" else tf.nn.avg_pool2d
            y = f(v, a["kernel"], a["stride"], padding)
        elif op.type == "global_avg_pool":
            y = tf.reduce_mean(v, axis=[1, 2], keepdims=True)
        elif op.type == "reshape":
            y = tf.reshape(v, graph.tensors[op.outputs[0]].shape)
        elif op.type in ("relu", "relu6"):
            y = tf.nn.relu(v) if op.type == "relu" else tf.nn.relu6(v)
        elif op.type == "softmax":   # the loss takes logits (cross-entropy through a final softmax)
            y = v if op.outputs[0] in graph.outputs else tf.nn.softmax(v, axis=-1)
        elif op.type == "pad":
            t, bo, l, r = a["pad"]
            y = tf.pad(v, [[0, 0], [t, bo], [l, r], [0, 0]])
        elif op.type in ("strided_slice", "resize_nearest"):     # gathers along H, W, C
            from tinytrain.ops import unit
            idx = unit(op.type).indices(graph, op) if op.type == "strided_slice" else \
                unit(op.type).tables(graph, op) + (np.arange(v.shape[-1]),)
            y = v
            for axis, i in zip((1, 2, 3), idx):
                y = tf.gather(y, np.asarray(i, np.int32), axis=axis)
        elif op.type == "resize_bilinear":
            size = graph.tensors[op.outputs[0]].shape[1:3]
            y = tf.compat.v1.image.resize_bilinear(v, size, align_corners=bool(a.get("align_corners", False)),
                                                   half_pixel_centers=bool(a.get("half_pixel_centers", False)))
        elif op.type == "transpose_conv":     # the full scatter (VALID), then the output window
            w = variables[op.inputs[1]]
            cout, kh, kw, _ = graph.tensors[op.inputs[1]].shape
            (sh, sw), (pt, _, pl, _) = a["stride"], a["pad"]
            _, h, wd, _ = graph.tensors[op.inputs[0]].shape
            _, oh, ow, _ = graph.tensors[op.outputs[0]].shape
            fh, fw = (h - 1) * sh + kh, (wd - 1) * sw + kw
            full = tf.nn.conv2d_transpose(v, tf.transpose(w, [1, 2, 0, 3]), [1, fh, fw, cout], [1, sh, sw, 1],
                                          "VALID")
            full = tf.pad(full, [[0, 0], [0, max(0, pt + oh - fh)], [0, max(0, pl + ow - fw)], [0, 0]])
            y = full[:, pt: pt + oh, pl: pl + ow, :] + variables[op.inputs[2]]
        else:
            raise NotImplementedError(op.type)
        act = a.get("activation", "none")
        if act == "relu":
            y = tf.nn.relu(y)
        elif act == "relu6":
            y = tf.nn.relu6(y)
        vals[op.outputs[0]] = y
    return vals[graph.outputs[0]]


def quantize_graph(graph: Graph, calib: np.ndarray) -> Graph:
    """int8 twin of a float graph: per-tensor activations from the ranges seen on `calib`,
    per-channel symmetric weights, int32 biases (scale s_x * s_w)."""
    import copy
    from tinytrain.training.program import build_program
    from tinytrain.training.simulate import Trainer
    tr = Trainer(build_program(graph, "full"))
    lo, hi = {}, {}
    for x in calib:
        for k, v in tr.forward(x).items():
            lo[k] = min(lo.get(k, 0.0), float(v.min()))
            hi[k] = max(hi.get(k, 0.0), float(v.max()))
    g = copy.deepcopy(graph)
    for _ in range(3):     # maximum / minimum / concatenation: one quantization for all operands
        for op in graph.ops:
            if op.type in ("maximum", "minimum", "concatenation"):
                names = [t for t in (*op.inputs, *op.outputs) if not graph.tensors[t].is_const]
                lo_u, hi_u = min(lo[t] for t in names), max(hi[t] for t in names)
                for t in names:
                    lo[t], hi[t] = lo_u, hi_u
    for t in graph.activations():
        scale = max(hi[t.name] - lo[t.name], 1e-6) / 255.0
        zp = int(np.clip(round(-128 - lo[t.name] / scale), -128, 127))
        g.tensors[t.name] = Tensor(t.name, t.shape, "int8", QuantParams.per_tensor(scale, zp))
    fixed = {"logistic": (1 / 256, -128), "tanh": (1 / 128, 0)}     # as the converter makes them
    for op in g.ops:
        if op.type in fixed:
            g.tensors[op.outputs[0]].quant = QuantParams.per_tensor(*fixed[op.type])
        if op.type in ("add", "sub", "mul", "maximum", "minimum", "prelu", "concatenation"):
            for name in op.inputs:      # constant operands: int8, per-tensor, asymmetric
                c = g.tensors[name]
                if c.is_const and c.dtype == "float32":
                    lo_c, hi_c = min(float(c.data.min()), 0.0), max(float(c.data.max()), 0.0)
                    scale = max(hi_c - lo_c, 1e-6) / 255.0
                    zp = int(np.clip(round(-128 - lo_c / scale), -128, 127))
                    if op.type in ("maximum", "minimum", "concatenation"):    # the output's
                        scale, zp = g.tensors[op.outputs[0]].scale, g.tensors[op.outputs[0]].zero_point
                    q = np.clip(np.round(c.data / scale) + zp, -128, 127).astype(np.int8)
                    g.tensors[name] = Tensor(name, c.shape, "int8", QuantParams.per_tensor(scale, zp), q)
    for op in g.ops:   # these ops keep their input's quantization (as TFLite requires)
        if op.type in ("avg_pool2d", "max_pool2d", "reshape", "pad", "resize_nearest", "resize_bilinear",
                       "strided_slice"):
            g.tensors[op.outputs[0]].quant = g.tensors[op.inputs[0]].quant
    for op in g.ops:
        if op.type not in ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv"):
            continue
        w = g.tensors[op.inputs[1]]
        axis = 2 if op.type == "depthwise_conv2d" else 0
        red = tuple(i for i in range(w.data.ndim) if i != axis)
        s = np.maximum(np.abs(w.data).max(axis=red), 1e-8) / 127.0
        shape = [1] * w.data.ndim
        shape[axis] = -1
        wq = np.clip(np.round(w.data / s.reshape(shape)), -127, 127).astype(np.int8)
        g.tensors[w.name] = Tensor(w.name, w.shape, "int8", QuantParams(s, np.zeros_like(s), axis=axis), wq)
        b = g.tensors[op.inputs[2]]
        bs = s * g.tensors[op.inputs[0]].scale
        bq = np.round(b.data / bs).astype(np.int32)
        g.tensors[b.name] = Tensor(b.name, b.shape, "int32", QuantParams(bs, np.zeros_like(bs), axis=0), bq)
    g.name = graph.name + "_int8"
    return g.validate()


def int8_graph(name, seed=0):
    g = MODELS[name](seed)
    calib = np.random.default_rng(seed + 10).standard_normal((8,) + g.tensors["input"].shape).astype(np.float32)
    gq = quantize_graph(g, calib)
    for op in gq.ops:     # int8 softmax outputs are 1/256, -128 (as TFLite makes them)
        if op.type == "softmax":
            gq.tensors[op.outputs[0]].quant = QuantParams.per_tensor(1 / 256, -128)
    return gq


SPARSE = {"bias_update_last_n": 2, "weight_update": [{"conv_index": 1, "input_channel_ratio": 0.5}]}


def scheme_file(tmp_path, spec=SPARSE):
    p = tmp_path / "scheme.json"
    p.write_text(json.dumps(spec))
    return str(p)


def int8_inputs(g, n, seed):
    t = g.tensors["input"]
    x = np.random.default_rng(seed).standard_normal((n,) + t.shape)
    return np.clip(np.round(x / t.scale) + t.zero_point, -128, 127).astype(np.int8)
