"""What the int8 table-lookup activations share (logistic, tanh): LiteRT's reference kernel
for them (activations.cc, kReference, which BUILTIN_REF resolves) fills a 256-entry table in
its Prepare (LUTPopulate<int8_t>) and looks every input up in it. The table is computed here,
at compile time, exactly as LUTPopulate computes it, and emitted as a flash array; the C
kernel is the lookup (firmware/kernels/lut/).

LUTPopulate works in float32:
    inverse_scale = 1 / output_scale
    dequantized   = input_scale * (float)(q - input_zero_point)
    transformed   = f(dequantized)                  (float std::exp / std::tanh: libm)
    quantized     = (int32)(roundf(transformed * inverse_scale) + output_zero_point), clamped
f is evaluated with this machine's C library (expf, tanhf through ctypes), the library the
LiteRT interpreter calls; numpy float32 arithmetic does the rest. Where no C library can be
loaded, f is evaluated in float64 and rounded to float32 (correctly rounded; libm is within
an ulp of it, which moves a table entry only when a product lands on a rounding boundary).

Float graphs use tt_math.h's expf (the same bits on every target; tinytrain.ieee_math); float16
graphs widen each half, run the float32 function and round once (tt_<op>_f16), and take the
gradient from the saved half output in float32 (tt_<op>_grad_input_f16, one rounding)."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from .base import OpUnit, same_dtype

F32 = np.float32


@functools.lru_cache(maxsize=None)
def _libm_function(name: str):
    """A float -> float function of the C library (expf, tanhf), or None."""
    path = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(path) if path else ctypes.CDLL(None)
        fn = getattr(lib, name)
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def libm_f32(name: str, fallback, x: np.ndarray) -> np.ndarray:
    """The C library's float `name` on each element of x (fallback: float64 `fallback`)."""
    x = np.asarray(x, F32)
    fn = _libm_function(name)
    if fn is None:
        return np.asarray(fallback(x.astype(np.float64)), np.float64).astype(F32)
    return np.array([fn(float(v)) for v in x.reshape(-1)], F32).reshape(x.shape)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """roundf, element-wise on float32."""
    a = np.abs(v)
    r = np.floor(a)
    r = r + (a - r >= F32(0.5)).astype(F32)
    return np.copysign(r, v).astype(F32)


def lut_populate_s8(in_scale: float, in_zp: int, out_scale: float, out_zp: int, transform) -> np.ndarray:
    """LiteRT's LUTPopulate<int8_t>: the int8 output of every int8 input q, table[q + 128].
    `transform` maps a float32 array to float32 as the kernel's float function does."""
    with np.errstate(over="ignore", invalid="ignore"):
        inverse_scale = F32(1.0) / F32(out_scale)
        q = np.arange(-128, 128, dtype=np.int64)
        dequantized = F32(in_scale) * (q - int(in_zp)).astype(F32)
        transformed = np.asarray(transform(dequantized), F32)
        rescaled = round_half_away((transformed * inverse_scale).astype(F32))
        shifted = (rescaled + F32(out_zp)).astype(F32)
        quantized = np.clip(np.nan_to_num(shifted, nan=0.0), -2.0 ** 31, 2.0 ** 31 - 1).astype(np.int64)
    return np.clip(quantized, -128, 127).astype(np.int8)


class LutActivation(OpUnit):
    """An elementwise activation whose int8 form is a 256-entry table (LUT), whose gradient
    reads the saved output y."""
    channelwise = True
    out_quant: tuple[float, int] | None = None      # the int8 output quantization LiteRT requires

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The float function as LiteRT's Prepare evaluates it for the table."""
        raise NotImplementedError

    def f32(self, x: np.ndarray) -> np.ndarray:
        """The float kernel (tt_math.h's expf), bit for bit."""
        raise NotImplementedError

    def grad_from_y(self, y: np.ndarray) -> np.ndarray:
        """d y / d x from y (float32)."""
        raise NotImplementedError

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)
        from ..errors import UnsupportedError
        y = g.tensors[op.outputs[0]]
        if y.dtype == "int8" and self.out_quant is not None:
            s, zp = self.out_quant
            if float(y.scale) != s:
                raise UnsupportedError(op.name, f"int8 {op.type.upper()} with output scale {y.scale} "
                                                f"(LiteRT requires {s})")

    def table(self, g, op) -> np.ndarray:
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return lut_populate_s8(x.scale, x.zero_point, y.scale, y.zero_point, self.transform)

    def params(self, g, op):
        return {"lut": self.table(g, op)}

    def ref_s8(self, g, op, args):
        return self.table(g, op)[np.asarray(args[0], np.int64) + 128]

    def ref_f32(self, g, op, args):
        return self.f32(np.asarray(args[0], F32))

    def ref_f16(self, g, op, args):
        """tt_<op>_f16: the float32 function of the widened half, rounded once."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.f32(np.asarray(args[0], np.float16).astype(F32)).astype(np.float16)

    def from_tflite(self, r, name, kind, op, ins, outs):
        return r.unary(name, self.type, ins, outs)

    def emit(self, em, op):
        g = em.graph
        n = g.tensors[op.outputs[0]].size
        x, y = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
        if self.is_int8(g, op):
            table = self.table(g, op)
            key = ("lut", table.tobytes())
            if key not in em.cache:
                em.cache[key] = em.array(f"lut_{op.name}", "int8", table, f"{op.name}: {op.type} table, [q + 128]")
            return [em.call(em.kernel("tt_lut_s8"), x, n, em.cache[key], y)]
        sfx = "f16" if g.tensors[op.inputs[0]].dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_{self.type}_{sfx}"), x, n, y)]

    # --- training: the gradient from the saved output -------------------------------------------
    def backward_reads(self, g, op):
        return {"y": op.outputs[0]}

    def vjp(self, ctx, op, dy, step):
        if not step.grad_inputs:
            return {}, {}
        y = ctx.real(op.outputs[0])          # float16: the saved half, widened (exact)
        with np.errstate(invalid="ignore"):
            return {op.inputs[0]: (np.asarray(dy, F32) * self.grad_from_y(y)).astype(F32)}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        yt = em.graph.tensors[op.outputs[0]]
        gy, gx, acc = t.grad(step.grad_out), t.grad(step.grad_inputs[x]), t.acc(step, x)
        if yt.dtype == "int8":
            return [em.call(em.kernel(f"tt_{self.type}_grad_input_s8"), yt.size, t.view(op.outputs[0]),
                            t.act_quant(op.outputs[0]), gy, acc, gx)]
        sfx = "f16" if yt.dtype == "float16" else "f32"
        return [em.call(em.kernel(f"tt_{self.type}_grad_input_{sfx}"), yt.size, t.view(op.outputs[0]), gy, acc, gx)]
