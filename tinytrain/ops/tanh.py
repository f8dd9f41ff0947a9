"""tanh. One input, same shape out.

int8: LiteRT's reference TANH is a table lookup (tinytrain/ops/lut.py): its Prepare fills the
table with tanhf(x) (the fixed-point Tanh16bitPrecision path is another kernel type, not the
reference resolver's); no constraint on the output quantization.
float32: an odd polynomial below |x| = 1/8, (1 - e) / (1 + e) with e = expf(-2|x|) above, in
float32 with tt_math.h's expf (tt_tanhf; within a few ulp of tanh; the same bits on every target).
float16: tt_tanhf of each widened half, rounded once (tanh_f16.c); the gradient
grad_y * (1 - y * y) in float32 from the saved half output, rounded once. Portable only, as
logistic (tinytrain/ops/logistic.py says why)."""
from __future__ import annotations

import numpy as np

from ..ieee_math import expf
from .lut import F32, LutActivation, libm_f32

SMALL = F32(0.125)
# tanh x = x + x^3 (-1/3 + x^2 (2/15 + x^2 (-17/315))) + O(x^9): below 1/8, < 4e-9 relative
C3, C5, C7 = F32(-1.0 / 3.0), F32(2.0 / 15.0), F32(-17.0 / 315.0)


def tanh_f32(x) -> np.ndarray:
    """As tt_tanhf computes it (tt_math.h; tanh_f32.c, tanh_f16.c)."""
    x = np.asarray(x, F32)
    a = np.abs(x)
    x2 = (x * x).astype(F32)
    poly = (x + x * x2 * (C3 + x2 * (C5 + x2 * C7))).astype(F32)
    e = expf((F32(-2.0) * a).astype(F32))
    big = ((F32(1.0) - e) / (F32(1.0) + e)).astype(F32)
    return np.where(np.isnan(x), x, np.where(a < SMALL, poly, np.copysign(big, x))).astype(F32)


class Tanh(LutActivation):
    type = "tanh"
    summary = "tanh (int8: LiteRT's lookup table)"
    tflite_ops = ("TANH",)
    keras_activations = ("tanh",)
    float16 = True      # tanh_f16.c, tanh_backward_f16.c (tt_math.h in float, one rounding; portable only)
    keras_ops = ("Tanh",)

    def transform(self, x):
        return libm_f32("tanhf", np.tanh, x)

    def f32(self, x):
        return tanh_f32(x)

    def grad_from_y(self, y):
        y = np.asarray(y, F32)
        return (F32(1.0) - y * y).astype(F32)

    def from_keras_op(self, imp, operation, operands, outs):
        imp.emit(operation, self.type, [imp.operand(operation, operands[0])], outs[0])


UNIT = Tanh()
