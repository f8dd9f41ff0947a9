"""mul: a * b, broadcast (either operand may be a constant: Keras Rescaling's scale, a
standalone batch normalisation's per-channel factor; or both activations: squeeze-excite's
(1,H,W,C) * (1,1,1,C)). Attribute: activation.

int8: LiteRT's reference MUL (reference_integer_ops::Mul -> MulElementwise for equal shapes,
BroadcastMul6DSlow otherwise; the same arithmetic): (a - a_zp) * (b - b_zp) rescaled by ONE
multiplier, QuantizeMultiplier(s_a * s_b / s_y) of the scales multiplied and divided in
float32 (its Prepare's `input1->params.scale * input2->params.scale / output->params.scale`),
a left shift when that multiplier is 1 or more.

float16 (mul_f16.c, mul_backward_f16.c; Helium mul_f16_mve.c, the same bits): the product
of two halves is exact in float32, so each output is the correctly rounded half product
(then the activation). Gradients: to an operand of the output's shape, half(d y * other)
(accumulating: added to the old half in one more rounding, as two gradients are summed);
to an operand that broadcasts, the float32 sum of d y * other over the output positions
that read each element (the broadcast axes in row-major order), rounded once."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..fixedpoint import clamp_s8, i64, mul_by_quantized_multiplier
from . import f16
from .elementwise import BinaryOp, bcast_fields, reduce_to

MUL_FIELDS = ("a_zp", "b_zp", "out_zp", "out_mult", "out_shift", "act_min", "act_max")


def mul_params(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp, activation: str = "none") -> dict:
    """MUL's Prepare: the real multiplier in float32 arithmetic, QuantizeMultiplier in double."""
    f32 = np.float32
    real = float((f32(a_scale) * f32(b_scale)) / f32(y_scale))
    mult, shift = quant.quantize_multiplier(real)
    act_min, act_max = quant.activation_range(activation, y_scale, y_zp)
    return dict(a_zp=int(a_zp), b_zp=int(b_zp), out_zp=int(y_zp), out_mult=mult, out_shift=shift,
                act_min=act_min, act_max=act_max)


def mul_s8(a, b, p: dict) -> np.ndarray:
    prod = (i64(a) - p["a_zp"]) * (i64(b) - p["b_zp"])          # |255 * 255| fits int32
    out = mul_by_quantized_multiplier(prod, p["out_mult"], p["out_shift"]) + p["out_zp"]
    return clamp_s8(out, p["act_min"], p["act_max"])


class Mul(BinaryOp):
    type = "mul"
    summary = "a * b, broadcast (constant operands, squeeze-excite), fused relu/relu6"
    attrs = {"activation": "none"}
    tflite_ops = ("MUL",)
    keras_layers = ("Multiply",)
    keras_inputs = None
    keras_ops = ("Multiply",)
    float16 = True          # mul_f16.c, mul_backward_f16.c; Helium mul_f16_mve.c (the same bits)
    f16_bcast_variants = {"mve": True}

    def params(self, g, op):
        a, b = (g.tensors[t] for t in op.inputs)
        y = g.tensors[op.outputs[0]]
        return mul_params(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point,
                          self.activation(op))

    def s8(self, a, b, p):
        return mul_s8(a, b, p)

    def f32(self, a, b):
        return (a.astype(np.float64) * b).astype(np.float32)

    def params_struct(self, em, op):
        p = self.params(em.graph, op)
        return em.struct("tt_mul_params", "mulp_" + op.name, **{k: int(p[k]) for k in MUL_FIELDS})

    # --- training: d a = d y * b, d b = d y * a (summed over what each broadcast) --------------
    def backward_reads(self, g, op):
        """Each activation operand's gradient reads the other operand (constants are in flash)."""
        a, b = op.inputs
        return {role: t for role, t in (("a", a), ("b", b)) if not g.tensors[t].is_const}

    def backward_unsupported(self, g, op):
        if g.tensors[op.outputs[0]].dtype == "float16" and op.inputs[0] == op.inputs[1]:
            return f"backward of a float16 {op.type} of a tensor with itself"
        return None

    def vjp(self, ctx, op, dy, step):
        g = ctx.graph
        y_shape = g.tensors[op.outputs[0]].shape
        vals = [np.broadcast_to(ctx.real(t).reshape(g.tensors[t].shape), y_shape) for t in op.inputs]
        half = g.tensors[op.outputs[0]].dtype == "float16"
        grads: dict[str, np.ndarray] = {}
        for k, x in enumerate(op.inputs):
            if x in step.grad_inputs:
                other = vals[1 - k]
                if half:        # the float32 values tt_mul_grad_input_f16 / _bcast_f16 round once
                    fields = bcast_fields(g.tensors[x].shape, g.tensors[op.inputs[1 - k]].shape, y_shape)
                    grads[x] = f16.mul_grad(np.reshape(dy, y_shape), other, fields, g.tensors[x].shape)
                    continue
                d = reduce_to((dy.astype(np.float32) * other).astype(np.float32), g.tensors[x].shape)
                grads[x] = grads[x] + d if x in grads else d
        return grads, {}

    def emit_backward(self, em, op, step, t):
        g = em.graph
        lines, done = [], set()
        for k, x in enumerate(op.inputs):
            if x not in step.grad_inputs:
                continue
            other = g.tensors[op.inputs[1 - k]]
            acc = 1 if x in done else t.acc(step, x)
            gy, gx = t.grad(step.grad_out), t.grad(step.grad_inputs[x])
            src = em.ptr(other.name)
            if other.dtype == "float16":
                if g.tensors[x].size == g.tensors[op.outputs[0]].size:     # x walks as the output
                    fn = em.kernel("tt_mul_grad_input_f16", allowed={"mve": True})     # the same bits
                else:                   # Helium: the same float32 sums in float32 lanes
                    fn = em.kernel("tt_mul_grad_bcast_f16", allowed={"mve": True})
                lines.append(em.call(fn, self.bcast(em, op, x), src, gy, acc, gx))
            elif other.dtype == "int8":
                lines.append(em.call(em.kernel("tt_mul_grad_input_s8"), self.bcast(em, op, x), src,
                                     t.act_quant(other.name), gy, acc, gx))
            else:
                lines.append(em.call(em.kernel("tt_mul_grad_input_f32"), self.bcast(em, op, x), src, gy, acc, gx))
            done.add(x)
        return lines


UNIT = Mul()
