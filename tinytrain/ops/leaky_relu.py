"""leaky_relu: x where x > 0, alpha * x elsewhere. Attribute: alpha (float32, any sign).

int8: LiteRT's reference QuantizeLeakyRelu: two multipliers from its LeakyReluPrepare, both
in float32 arithmetic then QuantizeMultiplier: identity s_in / s_out for q >= zp, alpha
s_in * alpha / s_out below; a negative alpha multiplies by |multiplier| and negates.
float32: x > 0 ? x : x * alpha (TFLite's LeakyRelu). Gradient (TensorFlow's LeakyReluGrad):
d y where x > 0, alpha * d y elsewhere, from the saved input.
float16: alpha rounded to half (as a float16 graph rounds every constant), each product of
two halves rounded once (leaky_relu_f16.c; the Helium variant stores the same bits)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..cgen.cformat import CExpr, c_float
from ..errors import UnsupportedError
from ..fixedpoint import clamp_s8, i64, mul_by_quantized_multiplier
from . import f16
from .base import OpUnit, same_dtype

F32, F16 = np.float32, np.float16


def leaky_relu_params(in_scale, in_zp, out_scale, out_zp, alpha: float) -> dict:
    """LeakyReluPrepare: `input->params.scale * params->alpha / output->params.scale` and
    `input->params.scale / output->params.scale` in float32."""
    alpha_real = float((F32(in_scale) * F32(alpha)) / F32(out_scale))
    identity_real = float(F32(in_scale) / F32(out_scale))
    a_mult, a_shift = quant.quantize_multiplier(abs(alpha_real))
    i_mult, i_shift = quant.quantize_multiplier(identity_real)
    return dict(in_zp=int(in_zp), out_zp=int(out_zp), alpha_mult=a_mult, alpha_shift=a_shift,
                alpha_negative=int(alpha_real < 0), identity_mult=i_mult, identity_shift=i_shift)


def leaky_relu_s8(x, p: dict) -> np.ndarray:
    v = i64(x) - p["in_zp"]
    pos = mul_by_quantized_multiplier(v, p["identity_mult"], p["identity_shift"])
    neg = mul_by_quantized_multiplier(v, p["alpha_mult"], p["alpha_shift"])
    neg = -neg if p["alpha_negative"] else neg
    return clamp_s8(p["out_zp"] + np.where(v >= 0, pos, neg), -128, 127)


def leaky_relu_f32(x, alpha: float) -> np.ndarray:
    x = np.asarray(x, F32)
    return np.where(x > 0, x, x * F32(alpha)).astype(F32)


def leaky_relu_grad(x, dy, alpha: float) -> np.ndarray:
    x, dy = np.asarray(x, F32), np.asarray(dy, F32)
    return np.where(x > 0, dy, dy * F32(alpha)).astype(F32)


def half_alpha(alpha: float) -> np.float16:
    """alpha of a float16 graph: the float32 alpha rounded to half (nearest even)."""
    return F16(F32(alpha))


def c_half(v) -> CExpr:
    """A half constant as its bits (a tt_f16 argument)."""
    return CExpr(f"(tt_f16)0x{int(np.asarray(v, F16).view(np.uint16)):04x}u")


@f16._ieee
def half_product(a, b) -> np.ndarray:
    """half(a * b) of two halves: the exact product (float32 holds it) rounded once, as the
    portable kernels' float product and Helium's vmulq_f16 round it."""
    return (f16.f32(a) * f16.f32(b)).astype(F16)


def leaky_relu_f16(x, alpha) -> np.ndarray:
    """tt_leaky_relu_f16 / _mve: x <= 0 ? half(x * alpha) : x (alpha a half; a NaN as it came)."""
    x = np.asarray(x, F16)
    return np.where(x <= 0, half_product(x, alpha), x)


def leaky_relu_grad_f16(x, dy, alpha) -> np.ndarray:
    """tt_leaky_relu_grad_input_f16 / _mve before the store: half(dy * alpha) where x <= 0, dy
    elsewhere (x > 0 or a NaN), as float32 (exact); the store's round_grad keeps it or adds
    the old value in one rounding."""
    x, dy = np.asarray(x, F16), np.asarray(dy, F16)
    return np.where(x <= 0, half_product(dy, alpha), dy).astype(F32)


class LeakyRelu(OpUnit):
    type = "leaky_relu"
    summary = "x > 0 ? x : alpha * x"
    attrs = {"alpha": 0.2}
    channelwise = True
    tflite_ops = ("LEAKY_RELU",)
    keras_layers = ("LeakyReLU",)
    keras_activations = ("leaky_relu",)
    float16 = True      # leaky_relu_f16.c, leaky_relu_backward_f16.c; Helium: the same bits

    def check(self, g, op):
        super().check(g, op)
        same_dtype(g, op)
        if not np.isfinite(float(self.attr(op, "alpha"))):
            raise UnsupportedError(op.name, f"leaky_relu alpha {self.attr(op, 'alpha')}")

    def alpha(self, op) -> float:
        return float(F32(self.attr(op, "alpha")))

    def params(self, g, op):
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return leaky_relu_params(x.scale, x.zero_point, y.scale, y.zero_point, self.alpha(op))

    def clamp(self, g, op):
        return -128, 127

    def ref_s8(self, g, op, args):
        return leaky_relu_s8(args[0], self.params(g, op))

    def ref_f32(self, g, op, args):
        return leaky_relu_f32(args[0], self.alpha(op))

    def ref_f16(self, g, op, args):
        return leaky_relu_f16(args[0], half_alpha(self.alpha(op)))

    def from_tflite(self, r, name, kind, op, ins, outs):
        opts = r.options(op, r.s.LeakyReluOptions)
        return r.unary(name, self.type, ins, outs, {"alpha": float(opts.Alpha()) if opts is not None else 0.2})

    def from_keras(self, imp, layer, ins, outs, cfg):
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        imp.emit(layer, self.type, [imp.input(layer, ins[0])], outs[0], {"alpha": float(slope)})

    def emit(self, em, op):
        g = em.graph
        n = g.tensors[op.outputs[0]].size
        x, y = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
        if self.is_int8(g, op):
            params = em.struct("tt_leaky_relu_params", "lrp_" + op.name, **self.params(g, op))
            return [em.call(em.kernel("tt_leaky_relu_s8"), x, n, params, y)]
        if g.tensors[op.inputs[0]].dtype == "float16":
            return [em.call(em.kernel("tt_leaky_relu_f16", allowed={"mve": True}), x, n,
                            c_half(half_alpha(self.alpha(op))), y)]
        return [em.call(em.kernel("tt_leaky_relu_f32"), x, n, CExpr(c_float(self.alpha(op))), y)]

    # --- training: the gradient needs the input's sign -----------------------------------------
    def backward_reads(self, g, op):
        return {"x": op.inputs[0]}

    def vjp(self, ctx, op, dy, step):
        if not step.grad_inputs:
            return {}, {}
        if ctx.graph.tensors[op.inputs[0]].dtype == "float16":
            return {op.inputs[0]: leaky_relu_grad_f16(ctx.real(op.inputs[0]), dy, half_alpha(self.alpha(op)))}, {}
        return {op.inputs[0]: leaky_relu_grad(ctx.real(op.inputs[0]), dy, self.alpha(op))}, {}

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        xt = em.graph.tensors[x]
        gy, gx, acc = t.grad(step.grad_out), t.grad(step.grad_inputs[x]), t.acc(step, x)
        alpha = CExpr(c_float(self.alpha(op)))
        if xt.dtype == "int8":
            return [em.call(em.kernel("tt_leaky_relu_grad_input_s8"), xt.size, t.view(x), t.act_quant(x), alpha,
                            gy, acc, gx)]
        if xt.dtype == "float16":
            return [em.call(em.kernel("tt_leaky_relu_grad_input_f16", allowed={"mve": True}), xt.size, t.view(x),
                            c_half(half_alpha(self.alpha(op))), gy, acc, gx)]
        return [em.call(em.kernel("tt_leaky_relu_grad_input_f32"), xt.size, t.view(x), alpha, gy, acc, gx)]


UNIT = LeakyRelu()
