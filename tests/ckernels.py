"""Test helper: compile the C kernels into a shared library and call them via ctypes.

    lib = load_kernels(build_dir=tmp_path_factory.mktemp("ck"))   # once per session
    lib.tt_relu_s8(ptr(x), x.size, byref(requant(q)), ptr(y))

Sources are firmware/kernels/**/<pattern> plus `extra_sources`, compiled with the project's
strict flags (-std=c99 -Wall -Wextra -Werror) so a warning fails the tests. The result
is cached per (pattern, extra_sources) for the session.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinytrain import cflags, quant
from tinytrain.ir import conv_out_size, same_padding

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
INCLUDE = FIRMWARE / "include"
KERNELS = FIRMWARE / "kernels"
CFLAGS = cflags.host() + ["-fPIC", "-shared"]

_cache: dict[tuple, ctypes.CDLL] = {}


def kernel_sources(pattern: str = "*.c") -> list[Path]:
    """Kernel files matching `pattern` in any op folder of firmware/kernels/."""
    return sorted(KERNELS.rglob(pattern))


def load_kernels(extra_sources=(), pattern: str | None = "*.c", build_dir=None, include_dirs=()) -> ctypes.CDLL:
    """Compile firmware/kernels/<pattern> (None: no kernel file) + extra_sources with gcc and
    load the library."""
    key = (pattern, tuple(str(s) for s in extra_sources), tuple(str(d) for d in include_dirs))
    if key in _cache:
        return _cache[key]
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc not found")
    kernels = [] if pattern is None else [str(p) for p in kernel_sources(pattern)]
    sources = kernels + [str(s) for s in extra_sources]
    if not sources:
        raise RuntimeError(f"no C sources match firmware/kernels/{pattern}")
    out_dir = Path(build_dir) if build_dir is not None else Path(tempfile.mkdtemp(prefix="ttck-"))
    lib_path = out_dir / f"libttkernels{len(_cache)}.so"
    cmd = ["gcc", *CFLAGS, f"-I{INCLUDE}", *[f"-I{d}" for d in include_dirs], *sources,
           "-o", str(lib_path), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"compiling kernels failed:\n{' '.join(cmd)}\n{res.stderr}")
    lib = ctypes.CDLL(str(lib_path))
    _cache[key] = lib
    return lib


def declare(lib: ctypes.CDLL, name: str, *argtypes, restype=None):
    """Set a function's prototype (needed for float arguments) and return it."""
    fn = getattr(lib, name)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


# --- numpy <-> ctypes ------------------------------------------------------------------------

_CTYPES = {
    np.dtype(np.int8): ctypes.c_int8, np.dtype(np.uint8): ctypes.c_uint8,
    np.dtype(np.int16): ctypes.c_int16, np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.uint32): ctypes.c_uint32, np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float16): ctypes.c_uint16, np.dtype(np.float64): ctypes.c_double,
}


def ptr(a: np.ndarray | None):
    """A typed pointer to a C-contiguous array's data (NULL for None). Keep `a` alive."""
    if a is None:
        return None
    if not a.flags["C_CONTIGUOUS"]:
        raise ValueError("array must be C-contiguous (use np.ascontiguousarray)")
    return a.ctypes.data_as(ctypes.POINTER(_CTYPES[a.dtype]))


def carray(values, dtype) -> np.ndarray:
    """A fresh C-contiguous array of `dtype`."""
    return np.ascontiguousarray(np.asarray(values, dtype=dtype))


# --- the structs of tt_types.h / tt_kernels.h --------------------------------------------------


class TtDims(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class TtGeom(ctypes.Structure):
    _fields_ = [("stride_h", ctypes.c_int32), ("stride_w", ctypes.c_int32),
                ("pad_top", ctypes.c_int32), ("pad_left", ctypes.c_int32),
                ("dil_h", ctypes.c_int32), ("dil_w", ctypes.c_int32)]


class TtRequant(ctypes.Structure):
    _fields_ = [("in_zp", ctypes.c_int32), ("out_zp", ctypes.c_int32),
                ("act_min", ctypes.c_int32), ("act_max", ctypes.c_int32),
                ("multiplier", ctypes.POINTER(ctypes.c_int32)),
                ("shift", ctypes.POINTER(ctypes.c_int32))]


class TtAddParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in (
        "a_zp", "b_zp", "out_zp", "a_mult", "a_shift", "b_mult", "b_shift",
        "out_mult", "out_shift", "left_shift", "act_min", "act_max")]


class TtSoftmaxParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("input_multiplier", "input_left_shift", "diff_min")]


class TtRng(ctypes.Structure):
    _fields_ = [("state", ctypes.c_uint32)]


# --- the argument structs of tt_train_kernels.h ---------------------------------------------------

class TtConvShape(ctypes.Structure):
    _fields_ = [("in", ctypes.POINTER(TtDims)), ("out", ctypes.POINTER(TtDims)),
                ("kh", ctypes.c_int32), ("kw", ctypes.c_int32), ("g", ctypes.POINTER(TtGeom))]


class TtChannels(ctypes.Structure):
    _fields_ = [("in_channels", ctypes.c_int32), ("k", ctypes.c_int32),
                ("index", ctypes.POINTER(ctypes.c_int32)), ("x_channels", ctypes.c_int32)]


class TtActQuant(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class TtWeightQuant(ctypes.Structure):
    _fields_ = [("scale", ctypes.POINTER(ctypes.c_float)), ("per_channel", ctypes.c_int32)]


class TtHparams(ctypes.Structure):
    _fields_ = [("lr", ctypes.c_float), ("momentum", ctypes.c_float), ("weight_decay", ctypes.c_float)]


class TtUpdate(ctypes.Structure):
    _fields_ = [("hp", ctypes.POINTER(TtHparams)), ("mode", ctypes.c_uint8),
                ("momentum", ctypes.POINTER(ctypes.c_float)), ("shadow", ctypes.POINTER(ctypes.c_float)),
                ("residual", ctypes.POINTER(ctypes.c_int8)), ("rng", ctypes.POINTER(TtRng)),
                ("ls", ctypes.c_void_p)]          # tt_loss_scale *: half-precision updates only


UPDATE_CODES = {"float": 0, "nearest": 1, "shadow": 2, "residual": 3, "stochastic": 4, "master": 5}


def conv_shape(in_shape, out_shape, kh, kw, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1)):
    """byref(tt_conv_shape): in/out (H, W, C) or (1, H, W, C), IR geometry (pad: t, b, l, r)."""
    d_in, d_out, g = dims(in_shape), dims(out_shape), geom(stride, pad, dilation)
    s = TtConvShape(ctypes.pointer(d_in), ctypes.pointer(d_out), int(kh), int(kw), ctypes.pointer(g))
    s._keep = (d_in, d_out, g)
    return ctypes.byref(s)


def channels(in_channels, k, index=None, x_channels=None):
    """byref(tt_channels): k of in_channels trained (index: an int32 array or None); x holds
    x_channels channels per pixel (default: all in_channels)."""
    idx = None if index is None else carray(index, np.int32)
    ch = TtChannels(int(in_channels), int(k), ptr(idx), int(in_channels if x_channels is None else x_channels))
    ch._keep = idx
    return ctypes.byref(ch)


def act_quant(scale, zero_point):
    return ctypes.byref(TtActQuant(float(scale), int(zero_point)))


def weight_quant(scales, per_channel: int):
    s = carray(scales, np.float32)
    wq = TtWeightQuant(ptr(s), int(per_channel))
    wq._keep = s
    return ctypes.byref(wq)


def update(lr, momentum=0.0, weight_decay=0.0, *, mode="float", m=None, shadow=None, residual=None,
           rng: TtRng | None = None):
    """byref(tt_update) with its own tt_hparams; m (momentum), shadow, residual: arrays updated in
    place, rng: a TtRng; keep them alive."""
    hp = TtHparams(float(lr), float(momentum), float(weight_decay))
    u = TtUpdate(ctypes.pointer(hp), UPDATE_CODES[mode], ptr(m), ptr(shadow), ptr(residual),
                 ctypes.pointer(rng) if rng is not None else None)
    u._keep = hp
    return ctypes.byref(u)


def dims(shape) -> TtDims:
    """tt_dims from (H, W, C) or (1, H, W, C)."""
    shape = tuple(shape)[-3:]
    return TtDims(*[int(v) for v in shape])


def geom(stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1)) -> TtGeom:
    """tt_geom from IR attributes: pad is (top, bottom, left, right)."""
    return TtGeom(int(stride[0]), int(stride[1]), int(pad[0]), int(pad[2]),
                  int(dilation[0]), int(dilation[1]))


def requant(q: dict) -> TtRequant:
    """tt_requant from a tinytrain.quant dict; the struct keeps its arrays alive."""
    mult = carray(q["multiplier"], np.int32)
    shift = carray(q["shift"], np.int32)
    r = TtRequant(int(q["in_zp"]), int(q["out_zp"]), int(q["act_min"]), int(q["act_max"]),
                  ptr(mult), ptr(shift))
    r._arrays = (mult, shift)
    return r


def add_params(p: dict) -> TtAddParams:
    return TtAddParams(*[int(p[name]) for name, _ in TtAddParams._fields_])


def softmax_params(p: dict) -> TtSoftmaxParams:
    return TtSoftmaxParams(*[int(p[name]) for name, _ in TtSoftmaxParams._fields_])


def header_struct(ctype: str) -> type:
    """A ctypes Structure of an int32-only parameter struct, its fields read from the
    `typedef struct { ... } ctype;` of firmware/include (so a test follows the header)."""
    import re
    if ctype in _structs:
        return _structs[ctype]
    for header in sorted(INCLUDE.glob("*.h")):
        m = re.search(r"typedef struct \{([^{}]*)\}\s*" + re.escape(ctype) + r"\s*;", header.read_text())
        if m:
            body = re.sub(r"/\*.*?\*/", " ", m.group(1), flags=re.S)
            names = []
            for decl in body.split(";"):
                decl = decl.strip()
                if not decl:
                    continue
                if not decl.startswith("int32_t "):
                    raise ValueError(f"{ctype}: not an int32_t field: {decl!r}")
                names += [n.strip() for n in decl[len("int32_t "):].split(",")]
            _structs[ctype] = type(ctype, (ctypes.Structure,), {"_fields_": [(n, ctypes.c_int32) for n in names]})
            return _structs[ctype]
    raise KeyError(f"no struct {ctype} in {INCLUDE}")


_structs: dict[str, type] = {}


def struct(ctype: str, fields: dict):
    """byref of a header_struct(ctype) filled from `fields` (every field of the struct)."""
    cls = header_struct(ctype)
    return ctypes.byref(cls(*[int(fields[n]) for n, _ in cls._fields_]))


# --- inputs and geometries the float kernel tests share ------------------------------------------

# Pooling cases (H, W, C, kernel, stride), run with SAME padding by the forward and the backward
# tests: even sizes, odd sizes (asymmetric padding), 1x1 spatial, a non-square kernel and stride.
POOL_GEOMETRIES = [
    (6, 6, 3, (2, 2), (2, 2)),
    (7, 5, 5, (3, 3), (2, 2)),
    (1, 1, 6, (1, 1), (1, 1)),
    (5, 8, 2, (3, 2), (1, 3)),
]


def rand(rng: np.random.Generator, *shape, scale: float = 1.0) -> np.ndarray:
    """A C-contiguous float32 array of standard normal values times `scale`."""
    return carray(rng.standard_normal(shape) * scale, np.float32)


def same_pads(H: int, W: int, k, stride) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): TensorFlow's SAME padding of a k[0] x k[1] window."""
    _, t, b = same_padding(H, k[0], stride[0])
    _, l, r = same_padding(W, k[1], stride[1])
    return (t, b, l, r)


# --- random int8 kernel arguments --------------------------------------------------------------

I8, I32 = np.int8, np.int32


def rand_s8(rng, shape, extreme=None):
    if extreme is not None:
        return np.full(shape, extreme, dtype=I8)
    return rng.integers(-128, 128, size=shape, dtype=I8)


def rand_requant(rng, channels, act, out_zp, acc_std):
    """Per-channel multipliers in [2^30, 2^31); shifts around the one that maps an
    accumulator of std `acc_std` to ~50 LSB, +-2 per channel (both signs when acc is small)."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=channels).astype(I32)
    _, base = quant.quantize_multiplier(50.0 / max(acc_std, 1e-3))
    shift = (base + rng.integers(-2, 3, size=channels)).astype(I32)
    act_min, act_max = {"none": (-128, 127), "relu": (out_zp, 127),
                        "relu6": (out_zp, min(127, out_zp + 60))}[act]
    return dict(in_zp=int(rng.integers(-128, 128)), out_zp=out_zp, act_min=act_min, act_max=act_max,
                multiplier=mult, shift=shift)


def out_hw_of(h, w, k, stride, pad, dil):
    return (conv_out_size(h, k[0], stride[0], pad[0], pad[1], dil[0]),
            conv_out_size(w, k[1], stride[1], pad[2], pad[3], dil[1]))


def same_pad(h, w, k, stride, dil=(1, 1)):
    _, t, b = same_padding(h, k[0], stride[0], dil[0])
    _, l, r = same_padding(w, k[1], stride[1], dil[1])
    return (t, b, l, r)
