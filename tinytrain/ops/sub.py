"""sub: a - b, broadcast (either operand may be a constant). Attribute: activation.

int8: LiteRT's reference SUB (reference_ops::Sub -> SubElementwise for equal shapes,
BroadcastQuantSubSlow otherwise; the same arithmetic): ADD's rescaling (tt_add_params, the
same PrepareGeneralSubOp numbers) with a difference instead of a sum. When the output
multiplier is 1 or more, LiteRT's Prepare switches to QuantizeMultiplierGreaterThanOne but
its kernel still divides by 2^-shift with a negative shift (undefined behaviour in C): that
case is refused."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..fixedpoint import clamp_s8, mul_by_quantized_multiplier, wrap32
from .add import ADD_FIELDS, Add, check_output_multiplier, scaled_operands


def sub_s8(a, b, p: dict) -> np.ndarray:
    a_scaled, b_scaled = scaled_operands(a, b, p)
    out = mul_by_quantized_multiplier(wrap32(a_scaled - b_scaled), p["out_mult"], p["out_shift"]) + p["out_zp"]
    return clamp_s8(out, p["act_min"], p["act_max"])


class Sub(Add):
    type = "sub"
    summary = "a - b, broadcast (constant operands allowed), fused relu/relu6"
    tflite_ops = ("SUB",)
    keras_layers = ("Subtract",)
    keras_inputs = 2
    keras_ops = ("Subtract",)
    signs = (1.0, -1.0)

    def check(self, g, op):
        super(Add, self).check(g, op)
        if self.is_int8(g, op):
            check_output_multiplier(op, self.params(g, op), "SUB")

    def params(self, g, op):
        return quant.add_params(g, op)

    def s8(self, a, b, p):
        return sub_s8(a, b, p)

    def f32(self, a, b):
        return (a.astype(np.float64) - b).astype(np.float32)

    def params_struct(self, em, op):
        p = self.params(em.graph, op)
        return em.struct("tt_add_params", "subp_" + op.name, **{k: int(p[k]) for k in ADD_FIELDS})


UNIT = Sub()
