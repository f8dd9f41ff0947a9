"""logistic: 1 / (1 + exp(-x)) (sigmoid). One input, same shape out.

int8: LiteRT's reference LOGISTIC is a table lookup (tinytrain/ops/lut.py): its Prepare
fills the table with 1.0f / (1.0f + expf(-x)) and requires the output scale 1/256.
float32: 1 / (1 + expf(-x)) with tt_math.h's expf (tt_logisticf).
float16: the same float32 function of each widened half, rounded once (logistic_f16.c); the
gradient grad_y * (y * (1 - y)) in float32 from the saved half output, rounded once. No
Helium variant: the function ends in a correctly rounded float32 division, which MVE has no
vector form of; tt_expf in float32 lanes would also need MVE's half <-> float vector
conversions, which QEMU 7.2 gets wrong; computed in half lanes it would not be this function."""
from __future__ import annotations

import numpy as np

from ..ieee_math import expf
from .lut import F32, LutActivation, libm_f32


def logistic_f32(x) -> np.ndarray:
    x = np.asarray(x, F32)
    with np.errstate(over="ignore", invalid="ignore"):
        y = (F32(1.0) / (F32(1.0) + expf(-x))).astype(F32)
    return np.where(np.isnan(x), x, y)          # tt_logisticf returns a NaN as it came


class Logistic(LutActivation):
    type = "logistic"
    summary = "sigmoid 1 / (1 + exp(-x)) (int8: LiteRT's lookup table)"
    out_quant = (1.0 / 256, -128)
    tflite_ops = ("LOGISTIC",)
    keras_activations = ("sigmoid",)
    float16 = True      # logistic_f16.c, logistic_backward_f16.c (tt_math.h in float, one rounding; portable only)
    keras_ops = ("Sigmoid",)

    def transform(self, x):
        with np.errstate(over="ignore"):
            e = libm_f32("expf", np.exp, -np.asarray(x, F32))
            return (F32(1.0) / (F32(1.0) + e)).astype(F32)

    def f32(self, x):
        return logistic_f32(x)

    def grad_from_y(self, y):
        y = np.asarray(y, F32)
        return (y * (F32(1.0) - y)).astype(F32)

    def from_keras_op(self, imp, operation, operands, outs):
        imp.emit(operation, self.type, [imp.operand(operation, operands[0])], outs[0])


UNIT = Logistic()
