"""C code generation: render model.h, model.c, model_data.h/.c from the Jinja2 templates.

The generator only arranges: fixed-point parameters come from tinytrain.quant (the same
numbers the numpy reference uses), arena offsets from tinytrain.planner.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from . import __version__, quant
from .errors import TinyTrainError, UnsupportedError
from .ir import DTYPE_BYTES, Graph, Op, Tensor, graph_macs
from .planner import Plan, plan_graph
from .resources import templates_dir

CTYPES = {"int8": "int8_t", "int32": "int32_t", "float32": "float"}
ACT_CODES = {"none": 0, "relu": 1, "relu6": 2}


@dataclass
class ModelArtifacts:
    """What generate_model wrote and the figures it knows."""
    files: list[Path]
    memory: dict[str, int]
    macs: int
    model_hash: str
    plan: Plan
    extra: dict[str, Any] = field(default_factory=dict)


def c_identifier(name: str) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "t_" + ident
    return ident


def format_array(values: np.ndarray, per_line: int = 24) -> str:
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "f":
        items = [c_float(v) + "f" if np.isfinite(v) else "0.0f" for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "    " + ",\n    ".join(lines) if lines else "    0"


def c_float(value: float) -> str:
    """A float literal that round-trips the float32 value exactly."""
    text = repr(float(np.float32(value)))
    return text if ("e" in text or "." in text) else text + ".0"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


class _Emitter:
    """Collects constant arrays, dims, geometries and parameter structs while the steps
    are built, de-duplicating identical dims/geometries."""

    def __init__(self, graph: Graph, plan: Plan):
        self.graph = graph
        self.plan = plan
        self.constants: list[dict] = []
        self.const_names: dict[str, str] = {}
        self.dims: dict[tuple, str] = {}
        self.geoms: dict[tuple, str] = {}
        self.requants: list[dict] = []
        self.add_params: list[dict] = []
        self.softmax_params: list[dict] = []
        self.mutable: set[str] = set()   # constants a training build keeps in SRAM
        self.steps: list[dict] = []      # the forward step contexts (a training build reuses them)

    # --- arena and constants -----------------------------------------------------------
    def ptr(self, tensor_name: str) -> str:
        t = self.graph.tensors[tensor_name]
        if t.is_const:
            return self.const(tensor_name)
        return f"(({CTYPES[t.dtype]} *)(tt_arena + {self.plan.offsets[tensor_name]}))"

    def const(self, tensor_name: str) -> str:
        if tensor_name not in self.const_names:
            t = self.graph.tensors[tensor_name]
            self.const_names[tensor_name] = self.add_array(
                c_identifier(tensor_name), t.dtype, t.data, f"{tensor_name} {t.dtype} {list(t.shape)}",
                mutable=tensor_name in self.mutable)
        return self.const_names[tensor_name]

    def add_array(self, cname: str, dtype: str, values, comment: str, mutable: bool = False) -> str:
        taken = {c["cname"] for c in self.constants}
        base, i = cname, 1
        while cname in taken:
            cname, i = f"{base}_{i}", i + 1
        arr = np.asarray(values)
        self.constants.append(dict(cname=cname, ctype=CTYPES[dtype], count=max(arr.size, 1),
                                   body=format_array(arr.astype(_np_dtype(dtype))),
                                   comment=comment, mutable=mutable,
                                   nbytes=arr.size * DTYPE_BYTES[dtype]))
        return cname

    # --- shared parameter structs --------------------------------------------------------
    def dims_of(self, tensor: Tensor) -> str:
        h, w, c = hwc(tensor)
        key = (h, w, c)
        if key not in self.dims:
            self.dims[key] = f"dims_{h}x{w}x{c}"
        return self.dims[key]

    def geom_of(self, op: Op) -> str:
        sh, sw = op.attrs.get("stride", (1, 1))
        top, _, left, _ = op.attrs.get("pad", (0, 0, 0, 0))
        dh, dw = op.attrs.get("dilation", (1, 1))
        key = (sh, sw, top, left, dh, dw)
        if key not in self.geoms:
            self.geoms[key] = "geom_" + "_".join(str(v) for v in key)
        return self.geoms[key]

    def requant_of(self, op: Op, params: dict) -> str:
        cname = f"rq_{c_identifier(op.name)}"
        mult = self.add_array(f"{cname}_mult", "int32", np.asarray(params["multiplier"]), f"{op.name} multipliers")
        shift = self.add_array(f"{cname}_shift", "int32", np.asarray(params["shift"]), f"{op.name} shifts")
        self.requants.append(dict(cname=cname, in_zp=int(params["in_zp"]), out_zp=int(params["out_zp"]),
                                  act_min=int(params["act_min"]), act_max=int(params["act_max"]),
                                  multiplier=mult, shift=shift))
        return cname


def _np_dtype(dtype: str):
    return {"int8": np.int8, "int32": np.int32, "float32": np.float32}[dtype]


def hwc(t: Tensor) -> tuple[int, int, int]:
    """(h, w, c) of an activation tensor: NHWC rank 4, or a (1, features) vector."""
    if len(t.shape) == 4:
        return t.shape[1], t.shape[2], t.shape[3]
    return 1, 1, t.size


def _step(em: _Emitter, op: Op) -> dict:
    g = em.graph
    x = g.tensors[op.inputs[0]]
    y = g.tensors[op.outputs[0]]
    t = "s8" if y.dtype == "int8" and op.type != "quantize" else "f32"
    if op.type == "dequantize":
        t = "s8"
    s: dict[str, Any] = dict(name=op.name, type=op.type, t=t, macro=op.type,
                             x=em.ptr(op.inputs[0]), y=em.ptr(op.outputs[0]),
                             comment=f"{list(x.shape)} -> {list(y.shape)}")
    act = op.attrs.get("activation", "none")
    if op.type in ("conv2d", "depthwise_conv2d"):
        w = g.tensors[op.inputs[1]]
        kh, kw = (w.shape[1], w.shape[2]) if op.type == "conv2d" else (w.shape[0], w.shape[1])
        s.update(w=em.ptr(op.inputs[1]), b=em.ptr(op.inputs[2]), kh=kh, kw=kw,
                 in_dims=em.dims_of(x), out_dims=em.dims_of(y), geom=em.geom_of(op))
        s["q_or_act"] = ("&" + em.requant_of(op, quant.conv_requant(g, op))) if t == "s8" else ACT_CODES[act]
        if op.attrs.get("inplace"):    # tinytrain.passes.inplace_dw: y may sit on x
            s["plane"] = em.ptr(op.attrs["scratch"])
    elif op.type == "pointwise_depthwise_conv2d":
        s.update(_fused_step(em, op))
    elif op.type == "fully_connected":
        w = g.tensors[op.inputs[1]]
        s.update(w=em.ptr(op.inputs[1]), b=em.ptr(op.inputs[2]),
                 in_features=int(w.shape[1]), out_features=int(w.shape[0]))
        if x.size != w.shape[1]:
            raise TinyTrainError(f"layer {op.name!r}: input has {x.size} values, weights expect {w.shape[1]}")
        s["q_or_act"] = ("&" + em.requant_of(op, quant.conv_requant(g, op))) if t == "s8" else ACT_CODES[act]
    elif op.type == "add":
        s.update(a=em.ptr(op.inputs[0]), b=em.ptr(op.inputs[1]), n=y.size, act=ACT_CODES[act])
        if t == "s8":
            p = dict(quant.add_params(g, op))
            p["cname"] = f"addp_{c_identifier(op.name)}"
            em.add_params.append(p)
            s["params"] = p["cname"]
    elif op.type in ("avg_pool2d", "max_pool2d"):
        kh, kw = op.attrs["kernel"]
        s.update(kh=kh, kw=kw, in_dims=em.dims_of(x), out_dims=em.dims_of(y), geom=em.geom_of(op))
        if t == "s8":
            p = quant.pool_params(g, op)
            s["act_args"] = f"{int(p['act_min'])}, {int(p['act_max'])}"
        else:
            s["act_args"] = str(ACT_CODES[act])
    elif op.type == "global_avg_pool":
        s.update(in_dims=em.dims_of(x))
        if t == "s8":
            s["requant"] = em.requant_of(op, quant.global_avg_pool_params(g, op))
    elif op.type in ("relu", "relu6"):
        s.update(macro="relu", n=y.size, act=ACT_CODES[op.type])
        if t == "s8":
            s["requant"] = em.requant_of(op, quant.relu_params(g, op))
    elif op.type == "softmax":
        depth = y.shape[-1]
        s.update(rows=y.size // depth, depth=depth)
        if t == "s8":
            p = dict(quant.softmax_params(g, op))
            p["cname"] = f"smp_{c_identifier(op.name)}"
            em.softmax_params.append(p)
            s["params"] = p["cname"]
    elif op.type == "pad":
        top, _, left, _ = op.attrs["pad"]
        s.update(in_dims=em.dims_of(x), out_dims=em.dims_of(y), pad_top=top, pad_left=left)
        if t == "s8":
            s["pad_value"] = int(quant.pad_value(g, op))
    elif op.type == "reshape":
        s.update(nbytes=y.nbytes)
    elif op.type in ("quantize", "dequantize"):
        q = y if op.type == "quantize" else x
        s.update(n=y.size, scale=c_float(q.scale) + "f", zp=q.zero_point)
    else:  # pragma: no cover - the IR rejects unknown op types
        raise UnsupportedError(op.name, f"op {op.type!r} in code generation")
    return s


def _fused_step(em: _Emitter, op: Op) -> dict:
    """Arguments of tt_pointwise_depthwise_conv2d_s8 (tinytrain.passes.fuse_pw_dw)."""
    from .passes import ring_rows, split_op
    g = em.graph
    pw, dw = split_op(op)
    mid = g.tensors[op.attrs["intermediate"]]
    kh, kw, _ = g.tensors[op.inputs[3]].shape
    return dict(w_pw=em.ptr(op.inputs[1]), b_pw=em.ptr(op.inputs[2]), mid_c=mid.shape[3],
                q_pw=em.requant_of(pw, quant.conv_requant(g, pw)),
                w_dw=em.ptr(op.inputs[3]), b_dw=em.ptr(op.inputs[4]), kh=kh, kw=kw,
                q_dw=em.requant_of(dw, quant.conv_requant(g, dw)),
                in_dims=em.dims_of(g.tensors[op.inputs[0]]), out_dims=em.dims_of(g.tensors[op.outputs[0]]),
                geom=em.geom_of(op), ring=em.ptr(op.attrs["scratch"]),
                ring_rows=ring_rows(g, op))


def _edge(graph: Graph, plan: Plan, name: str) -> dict:
    t = graph.tensors[name]
    q = t.quant is not None and not t.quant.per_channel
    return dict(name=name, size=t.size, shape=list(t.shape), dtype=t.dtype, ctype=CTYPES[t.dtype],
                offset=plan.offsets[name],
                scale=c_float(t.scale if q else 1.0), zp=t.zero_point if q else 0)


def memory_report(graph: Graph, plan: Plan) -> dict[str, int]:
    """Memory of an inference build: the planned arena, the constants, and the sum of all
    activation tensors (what no reuse would need)."""
    flash = sum(t.nbytes for t in graph.constants())
    arena = int(plan.arena_bytes)
    return dict(arena_bytes=arena, flash_bytes=flash, trainable_param_bytes=0,
                frozen_param_bytes=flash, total_sram_bytes=arena,
                naive_bytes=sum(t.nbytes for t in graph.activations()))


def generate_model(graph: Graph, out_dir: Path, *, plan: Plan | None = None,
                   train: Any = None) -> ModelArtifacts:
    """Write model.h, model.c, model_data.h and model_data.c for `graph` into out_dir.

    `train` is a training program from tinytrain.training (None for inference only); it
    contributes extra C through its own `render(emitter)` hook.
    """
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinyTrainError(f"model {graph.name!r}: code generation supports one input and one output "
                             f"(got {len(graph.inputs)} inputs, {len(graph.outputs)} outputs)")
    if plan is None and train is not None and hasattr(train, "plan"):
        plan = train.plan()      # a training build: one arena for forward and backward
    plan = plan or plan_graph(graph)
    em = _Emitter(graph, plan)
    if train is not None:
        em.mutable |= set(getattr(train, "mutable_constants", ()))
    steps = [_step(em, op) for op in graph.ops]
    em.steps = steps
    train_header = train_source = ""
    extra: dict[str, Any] = {}
    if train is not None:
        rendered = train.render(em)
        train_header, train_source = rendered["header"], rendered["source"]
        extra = rendered.get("extra", {})
    memory = memory_report(graph, plan)
    if train is not None and "memory" in extra:
        memory.update(extra["memory"])
    macs = graph_macs(graph)
    model_hash = graph.fingerprint()
    ctx = dict(version=__version__, name=graph.name, model_hash=model_hash, macs=macs,
               input=_edge(graph, plan, graph.inputs[0]), output=_edge(graph, plan, graph.outputs[0]),
               memory=memory, steps=steps, train=train is not None,
               train_header=train_header, train_source=train_source,
               dims=[dict(cname=n, h=k[0], w=k[1], c=k[2]) for k, n in em.dims.items()],
               geoms=[dict(cname=n, stride_h=k[0], stride_w=k[1], pad_top=k[2], pad_left=k[3],
                           dil_h=k[4], dil_w=k[5]) for k, n in em.geoms.items()],
               requants=em.requants, add_params=em.add_params, softmax_params=em.softmax_params,
               constants=em.constants, flash_bytes=sum(c["nbytes"] for c in em.constants))
    env = _environment()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for template, filename in (("model.h.j2", "model.h"), ("model.c.j2", "model.c"),
                               ("model_data.h.j2", "model_data.h"), ("model_data.c.j2", "model_data.c")):
        path = out_dir / filename
        path.write_text(env.get_template(template).render(**ctx))
        files.append(path)
    return ModelArtifacts(files=files, memory=memory, macs=macs, model_hash=model_hash, plan=plan, extra=extra)
