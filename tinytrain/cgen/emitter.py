"""The one C emitter: what op units call to turn an op (forward or backward) into C.

It owns the C namespace of a generated model and collects, while the op units emit:
  * arena views      `static int8_t *const conv1_out = (int8_t *)(tt_arena + 1024);`
                     one per arena buffer that some statement uses (tensors, gradients,
                     masks, saved channels, scratch), declared once;
  * constant arrays  weights, biases, multiplier tables... (model_data.c); trained
                     parameters are emitted without `const` so they live in SRAM;
  * param structs    `static const tt_requant rq_conv1 = { .in_zp = -128, ... };`,
                     designated initialisers, identical ones shared;
  * state arrays     optimizer state (momentum, shadows) in SRAM, zero-initialised;
  * kernel calls     the kernel functions used, best variant for the board
                     (cgen.kernels.choose), so a project gets only those files.
The op units (tinytrain/ops/) decide WHAT to call; the emitter only names and arranges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dtypes import DTYPES
from ..errors import TinyTrainError
from ..ir import Graph, Op, Tensor
from .cformat import CTYPES, NP_DTYPES, NULL, CExpr, c_identifier, c_value
from .kernels import KernelIndex, choose, kernel_index, struct_bytes



@dataclass
class CArray:
    cname: str
    dtype: str
    values: np.ndarray
    comment: str
    mutable: bool = False       # SRAM (a trained parameter), else flash

    @property
    def ctype(self) -> str:
        return CTYPES[self.dtype]

    @property
    def count(self) -> int:
        return max(int(self.values.size), 1)

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * np.dtype(NP_DTYPES[self.dtype]).itemsize


@dataclass
class CStruct:
    ctype: str
    cname: str
    fields: list[tuple[str, str]]       # (field, C initializer)
    comment: str = ""

    @property
    def initializer(self) -> str:
        return "{ " + ", ".join(f".{k} = {v}" for k, v in self.fields) + " }"


@dataclass
class CState:
    """A zero-initialised SRAM array (optimizer state)."""
    cname: str
    dtype: str
    count: int
    comment: str

    @property
    def ctype(self) -> str:
        return CTYPES[self.dtype]

    @property
    def nbytes(self) -> int:
        return self.count * np.dtype(NP_DTYPES[self.dtype]).itemsize

    @property
    def dtype_code(self) -> str:
        """Its TT_DTYPE_* (tt_model_state(i)->dtype)."""
        return f"TT_DTYPE_{DTYPES[self.dtype].c_suffix.upper()}"


@dataclass
class CView:
    cname: str
    ctype: str
    offset: int
    buffer: str


@dataclass
class ArenaSlot:
    offset: int
    dtype: str                  # int8 | int32 | float32 | float16 | bits


class Emitter:
    """Collects the C of one generated model; see the module docstring."""

    def __init__(self, graph: Graph, arena: dict[str, ArenaSlot], *, simd: str = "none",
                 mutable: set[str] = frozenset(), index: KernelIndex | None = None):
        self.graph = graph
        self.arena = arena
        self.simd = simd
        self.mutable = set(mutable)
        self.index = index or kernel_index()
        self.names: set[str] = {"tt_arena"}
        self.views: dict[str, CView] = {}
        self.arrays: list[CArray] = []
        self.const_names: dict[str, str] = {}
        self.structs: dict[tuple, CStruct] = {}
        self.states: list[CState] = []
        self.functions: set[str] = set()
        self.cache: dict[Any, Any] = {}       # op units memoise derived arrays here

    # --- names -------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        """A fresh C identifier from `base`."""
        base = c_identifier(base)
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    # --- arena views -------------------------------------------------------------------
    def view(self, buffer: str, dtype: str | None = None) -> CExpr:
        """The arena view of a buffer (a tensor or a training buffer), typed by its dtype or
        by `dtype` when the same bytes are read as another type."""
        slot = self.arena.get(buffer)
        if slot is None:
            raise TinyTrainError(f"internal: {buffer!r} has no place in the arena")
        dtype = dtype or slot.dtype
        key = (buffer, dtype)
        if key not in self.views:
            suffix = "" if dtype == slot.dtype else "_" + dtype
            cname = self.unique(buffer + suffix)
            self.views[key] = CView(cname, CTYPES[dtype], slot.offset, buffer)
        return CExpr(self.views[key].cname)

    def ptr(self, tensor: str) -> CExpr:
        """A tensor's data: its constant array or its arena view."""
        t = self.graph.tensors[tensor]
        return self.const(tensor) if t.is_const else self.view(tensor)

    # --- arrays and state --------------------------------------------------------------
    def const(self, tensor: str) -> CExpr:
        """The array holding a constant tensor (in SRAM if it is trained)."""
        if tensor not in self.const_names:
            t = self.graph.tensors[tensor]
            self.const_names[tensor] = self.array(tensor, t.dtype, t.data,
                                                  f"{tensor} {t.dtype} {list(t.shape)}",
                                                  mutable=tensor in self.mutable).text
        return CExpr(self.const_names[tensor])

    def array(self, base: str, dtype: str, values, comment: str, mutable: bool = False) -> CExpr:
        """A new array of `values` in model_data.c."""
        arr = np.ascontiguousarray(np.asarray(values).astype(NP_DTYPES[dtype]))
        cname = self.unique(base)
        self.arrays.append(CArray(cname, dtype, arr, comment, mutable))
        return CExpr(cname)

    def state(self, base: str, dtype: str, count: int, comment: str) -> CExpr:
        """A zero-initialised SRAM array (optimizer state) in model.c."""
        cname = self.unique("tt_state_" + base)
        self.states.append(CState(cname, dtype, int(count), comment))
        return CExpr(cname)

    # --- parameter structs ---------------------------------------------------------------
    def struct(self, ctype: str, base: str, comment: str = "", **fields) -> CExpr:
        """`&name` of a `static const ctype name = { .field = value, ... }`; structs with the
        same type and fields are emitted once."""
        items = [(k, c_value(v)) for k, v in fields.items()]
        key = (ctype, tuple(items))
        if key not in self.structs:
            self.structs[key] = CStruct(ctype, self.unique(base), items, comment)
        return CExpr("&" + self.structs[key].cname)

    def dims(self, t: Tensor | tuple[int, int, int]) -> CExpr:
        """&tt_dims of an activation (h, w, c) (rank-2 tensors are 1 x 1 x features)."""
        h, w, c = t if isinstance(t, tuple) else hwc(t)
        return self.struct("tt_dims", f"dims_{h}x{w}x{c}", h=h, w=w, c=c)

    def geom(self, op: Op) -> CExpr:
        a = op.attrs
        sh, sw = a.get("stride", (1, 1))
        top, _, left, _ = a.get("pad", (0, 0, 0, 0))
        dh, dw = a.get("dilation", (1, 1))
        return self.struct("tt_geom", f"geom_s{sh}x{sw}_p{top}x{left}_d{dh}x{dw}",
                           stride_h=sh, stride_w=sw, pad_top=top, pad_left=left, dil_h=dh, dil_w=dw)

    def requant(self, op: Op, params: dict, name: str | None = None) -> CExpr:
        """&tt_requant of an int8 op (multiplier/shift tables in model_data.c)."""
        base = "rq_" + (name or op.name)
        mult = self.array(base + "_mult", "int32", params["multiplier"], f"{name or op.name} multipliers")
        shift = self.array(base + "_shift", "int32", params["shift"], f"{name or op.name} shifts")
        return self.struct("tt_requant", base, in_zp=int(params["in_zp"]), out_zp=int(params["out_zp"]),
                           act_min=int(params["act_min"]), act_max=int(params["act_max"]),
                           multiplier=mult, shift=shift)

    # --- kernels and statements ------------------------------------------------------------
    def kernel(self, function: str, allowed: dict[str, bool] | None = None) -> str:
        """The kernel to call for reference kernel `function` on this board (see
        cgen.kernels.choose); recorded so the project gets its file."""
        name = choose(function, self.simd, allowed, self.index)
        if not self.index.has(name):
            raise TinyTrainError(f"internal: no C kernel {name} in {self.index.root}")
        self.functions.add(name)
        return name

    def variant_kernel(self, function: str, op: Op) -> str:
        """The kernel for `op`, whose variant of `function` tinytrain.passes.select_kernels chose
        (attrs["variant"]; the reference when none). The memory plan sized the op's scratch
        for that kernel, so a board that cannot run it is an error, not a silent fallback."""
        v = op.attrs.get("variant")
        name = self.kernel(function, {v: True} if v else None)
        if v and name != f"{function}_{v}":
            raise TinyTrainError(f"internal: layer {op.name!r} was planned for {function}_{v}, which a "
                                 f"board with simd={self.simd!r} does not run")
        return name

    def rq_dsp(self, op: Op, params: dict, name: str | None = None) -> CExpr:
        """The `rq` table (tt_rq_dsp per output channel) the _dsp kernels take, made offline by
        tinytrain.kernel_prep.requant_dsp from the layer's requantisation (a flash array)."""
        from ..kernel_prep import requant_dsp
        key = ("rq_dsp", name or op.name)
        if key not in self.cache:
            arr = self.array("rqd_" + (name or op.name), "int32", requant_dsp(params).reshape(-1),
                             f"{name or op.name} tt_rq_dsp (mult, hi, shift) per channel")
            self.cache[key] = CExpr(f"(const tt_rq_dsp *){arr.text}")
        return self.cache[key]

    def kernel_scratch(self, op: Op) -> CExpr:
        """The arena view of the scratch buffer of op's kernel variant (passes.kernel_scratch)."""
        from ..passes import kernel_scratch_name
        return self.view(kernel_scratch_name(op))

    def use(self, function: str) -> str:
        """Record a runtime function a statement calls (kernel files are found from it)."""
        self.functions.add(function)
        return function

    def call(self, function: str, *args) -> str:
        """`function(a, b, ...);` with the arguments' C text (ints, floats, CExpr, NULL)."""
        self.use(function)
        return f"{function}({', '.join(_arg(a) for a in args)});"

    # --- results ---------------------------------------------------------------------------
    def kernel_files(self):
        return self.index.files_for(self.functions)

    def flash_bytes(self) -> int:
        """Constants of the model: every array of model_data.c (trained ones keep their
        initial values in flash too) and the parameter structs of model.c (32-bit target)."""
        return (sum(a.nbytes for a in self.arrays)
                + sum(struct_bytes(s.ctype) for s in self.structs.values()))

    def state_bytes(self) -> int:
        return sum(s.nbytes for s in self.states)


def _arg(a) -> str:
    if a is None:
        return NULL.text
    return c_value(a)


def hwc(t: Tensor) -> tuple[int, int, int]:
    """(h, w, c) of an activation tensor: NHWC rank 4, or a (1, features) vector."""
    if len(t.shape) == 4:
        return t.shape[1], t.shape[2], t.shape[3]
    return 1, 1, t.size
