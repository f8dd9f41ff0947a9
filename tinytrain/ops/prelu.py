"""prelu: x where x >= 0, alpha * x elsewhere, with a constant alpha that broadcasts against x
(one per channel: Keras PReLU(shared_axes=[1, 2]) gives (1, 1, C); without shared axes one
per element). Inputs [x, alpha].

int8: LiteRT's reference Prelu (equal shapes) / BroadcastPrelu4DSlow (the same arithmetic):
for q - zp >= 0 the multiplier s_x / s_y, below it (q - zp) * (alpha_q - alpha_zp) with the
multiplier s_x * s_alpha / s_y, both from PreluPrepare's float32 arithmetic.
float32: x >= 0 ? x : x * alpha. Gradient of x: d y where x > 0, alpha * d y elsewhere (alpha
is a constant: no gradient).
float16: alpha is a half constant (the graph rounds it); each product of two halves is
rounded once (prelu_f16.c; the Helium variants store the same bits); alpha is not trained, as
in float32."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..fixedpoint import clamp_s8, i64, mul_by_quantized_multiplier
from .elementwise import BinaryOp
from .leaky_relu import half_product

F32, F16 = np.float32, np.float16
PRELU_FIELDS = ("x_zp", "alpha_zp", "out_zp", "pos_mult", "pos_shift", "neg_mult", "neg_shift")


def prelu_params(x_scale, x_zp, alpha_scale, alpha_zp, y_scale, y_zp) -> dict:
    pos_mult, pos_shift = quant.quantize_multiplier(float(F32(x_scale) / F32(y_scale)))
    neg_mult, neg_shift = quant.quantize_multiplier(float((F32(x_scale) * F32(alpha_scale)) / F32(y_scale)))
    return dict(x_zp=int(x_zp), alpha_zp=int(alpha_zp), out_zp=int(y_zp), pos_mult=pos_mult,
                pos_shift=pos_shift, neg_mult=neg_mult, neg_shift=neg_shift)


def prelu_f16(x, alpha) -> np.ndarray:
    """tt_prelu(_bcast)_f16 / _mve: x < 0 ? half(x * alpha) : x (a NaN as it came), alpha
    broadcast to x."""
    x = np.asarray(x, F16)
    return np.where(x < 0, half_product(x, alpha), x)


def prelu_grad_f16(x, alpha, dy) -> np.ndarray:
    """tt_prelu_grad_input_f16 / _mve before the store: half(dy * alpha) where x <= 0, dy
    elsewhere (x > 0 or a NaN), as float32 (exact); round_grad keeps it or adds the old value
    once."""
    x, dy = np.asarray(x, F16), np.asarray(dy, F16)
    return np.where(x <= 0, half_product(dy, alpha), dy).astype(F32)


def prelu_s8(x, alpha, p: dict) -> np.ndarray:
    v = i64(x) - p["x_zp"]
    pos = mul_by_quantized_multiplier(v, p["pos_mult"], p["pos_shift"])
    neg = mul_by_quantized_multiplier(v * (i64(alpha) - p["alpha_zp"]), p["neg_mult"], p["neg_shift"])
    return clamp_s8(p["out_zp"] + np.where(v >= 0, pos, neg), -128, 127)


class Prelu(BinaryOp):
    type = "prelu"
    summary = "x >= 0 ? x : alpha * x, constant alpha per channel (or broadcast)"
    attrs: dict = {}
    fused_activation = False
    tflite_ops = ("PRELU",)
    keras_layers = ("PReLU",)
    keras_inputs = 1
    float16 = True      # prelu_f16.c, prelu_backward_f16.c; Helium (prelu_f16_mve.c): the same bits
    f16_bcast_variants = {"mve": True}

    def check(self, g, op):
        super().check(g, op)
        x, alpha = (g.tensors[t] for t in op.inputs)
        if x.is_const or not alpha.is_const:
            raise UnsupportedError(op.name, "PRELU with a non-constant alpha (a constant alpha only)")
        if x.shape != g.tensors[op.outputs[0]].shape:
            raise UnsupportedError(op.name, f"PRELU alpha {alpha.shape} that broadcasts the input {x.shape}")

    def params(self, g, op):
        x, alpha = (g.tensors[t] for t in op.inputs)
        y = g.tensors[op.outputs[0]]
        return prelu_params(x.scale, x.zero_point, alpha.scale, alpha.zero_point, y.scale, y.zero_point)

    def clamp(self, g, op):
        return -128, 127

    def ref_s8(self, g, op, args):
        x, alpha = self.operands(g, op, args)
        return prelu_s8(x, alpha, self.params(g, op))

    def f32(self, x, alpha):
        return np.where(x >= 0, x, x * alpha).astype(F32)

    def ref_f16(self, g, op, args):
        return prelu_f16(*self.operands(g, op, args))

    def params_struct(self, em, op):
        p = self.params(em.graph, op)
        return em.struct("tt_prelu_params", "prp_" + op.name, **{k: int(p[k]) for k in PRELU_FIELDS})

    def from_tflite(self, r, name, kind, op, ins, outs):
        from ..ir import Op
        x = r.activation(name, ins[0])
        y = r.activation(name, outs[0])
        alpha = r.operand(name, ins[1], r.tensors[y].dtype, role="alpha")
        return Op(name, self.type, [x, alpha], [y], {})

    def from_keras(self, imp, layer, ins, outs, cfg):
        x = imp.input(layer, ins[0])
        alpha = np.asarray(imp.weights(layer)[0], np.float32)
        a = imp.new_tensor(f"{layer.name}.alpha", alpha.shape, alpha)
        imp.emit(layer, self.type, [x, a], outs[0], {})

    # --- training: the gradient of x from its sign and alpha ---------------------------------
    def backward_reads(self, g, op):
        return {"x": op.inputs[0]}

    def vjp(self, ctx, op, dy, step):
        x, alpha = op.inputs
        if x not in step.grad_inputs:
            return {}, {}
        shape = ctx.graph.tensors[op.outputs[0]].shape
        xv = ctx.real(x).reshape(shape)
        av = np.broadcast_to(ctx.real(alpha).reshape(ctx.graph.tensors[alpha].shape), shape)
        if ctx.graph.tensors[x].dtype == "float16":
            return {x: prelu_grad_f16(xv, av, np.asarray(dy).reshape(shape))}, {}
        dy = np.asarray(dy, F32).reshape(shape)
        return {x: np.where(xv > 0, dy, dy * av).astype(F32)}, {}

    def emit_backward(self, em, op, step, t):
        x, alpha = op.inputs
        if x not in step.grad_inputs:
            return []
        g = em.graph
        xt = g.tensors[x]
        gy, gx, acc = t.grad(step.grad_out), t.grad(step.grad_inputs[x]), t.acc(step, x)
        if xt.dtype == "int8":
            return [em.call(em.kernel("tt_prelu_grad_input_s8"), self.bcast(em, op), t.view(x), t.act_quant(x),
                            em.ptr(alpha), t.act_quant(alpha), gy, acc, gx)]
        if xt.dtype == "float16":
            return [em.call(em.kernel("tt_prelu_grad_input_f16", allowed={"mve": True}), self.bcast(em, op),
                            t.view(x), em.ptr(alpha), gy, acc, gx)]
        return [em.call(em.kernel("tt_prelu_grad_input_f32"), self.bcast(em, op), t.view(x), em.ptr(alpha),
                        gy, acc, gx)]


UNIT = Prelu()
