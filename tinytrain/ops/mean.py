"""global_avg_pool: the mean over H and W (TFLite MEAN over axes 1, 2 with keep_dims; the
frontends add a reshape for keep_dims=False). Input [x (1,H,W,C)] -> (1,1,1,C)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..fixedpoint import clamp_s8, mul_by_quantized_multiplier
from . import f16
from .base import OpUnit, expect_rank4, hwc_of, same_dtype


def global_avg_pool_s8(x, q: dict) -> np.ndarray:
    """x (H, W, C) -> (C,): LiteRT's reference int8 MEAN over H, W; q's multiplier carries
    in_scale / out_scale with 1/(H*W) folded in as LiteRT folds it (quant.mean_multiplier)."""
    acc = (x.astype(np.int64) - q["in_zp"]).sum(axis=(0, 1))
    acc = mul_by_quantized_multiplier(acc, q["multiplier"][0], q["shift"][0]) + q["out_zp"]
    return clamp_s8(acc, q["act_min"], q["act_max"])


class GlobalAvgPool(OpUnit):
    channelwise = True
    type = "global_avg_pool"
    summary = "mean over height and width (TFLite MEAN over axes 1, 2)"
    tflite_ops = ("MEAN",)
    tflite_inputs = 2
    keras_layers = ("GlobalAveragePooling2D", "GlobalAveragePooling1D")
    float16 = True          # global_avg_pool_f16.c, global_avg_pool_backward_f16.c; Helium: *_f16_mve.c, the same bits

    def from_keras(self, imp, layer, ins, outs, cfg):
        imp.check_channels_last(layer, cfg)
        x = imp.input(layer, ins[0])
        channels = imp.tensors[x].shape[3]
        if cfg.get("keepdims", False):
            imp.emit(layer, self.type, [x], outs[0])
            return
        # The IR's global_avg_pool yields (1,1,1,C); Keras gives (1, C): add the reshape.
        pool = imp.emit(layer, self.type, [x], None, shape=(1, 1, 1, channels), suffix="_pool")
        imp.emit(layer, "reshape", pool.outputs, outs[0], shape=(1, channels))

    def from_tflite(self, r, name, kind, op, ins, outs):
        from ..errors import UnsupportedError
        from ..ir import Op
        file_axes = [int(a) for a in r.const_values(name, ins[1], np.int32).reshape(-1)]
        x = r.activation(name, ins[0])
        shape = r.tensors[x].shape
        axes = {r.ir_axis(ins[0], a) for a in file_axes}     # a (1, T, F) sequence is (1, 1, T, F)
        if len(shape) != 4 or not axes <= {1, 2} or any(shape[a] != 1 for a in {1, 2} - axes):
            raise UnsupportedError(name, f"MEAN over axes {file_axes} of {r.shape(ins[0])} (only the "
                                         "spatial axes of NHWC, or T of (1, T, F))")
        opts = r.options(op, r.s.ReducerOptions)
        y = r.activation(name, outs[0])
        yt = r.tensors[y]
        if opts is not None and opts.KeepDims():
            return [Op(name, self.type, [x], [y], {})]
        # The IR's global_avg_pool keeps (1,1,1,C); a reshape gives TFLite's (1, C). The pooled
        # tensor is computed first, so it goes into the tensor table before y: activations are
        # registered in schedule order, which the training program and the planner rely on.
        del r.tensors[y]
        pooled = r.new_tensor(f"{y}_pool", (1, 1, 1, yt.shape[-1]), yt.dtype, yt.quant)
        r.tensors[y] = yt
        return [Op(f"{name}_pool", self.type, [x], [pooled], {}), Op(name, "reshape", [pooled], [y], {})]

    def output_shape(self, g, op):
        return (1, 1, 1, g.tensors[op.inputs[0]].shape[3])

    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        same_dtype(g, op)

    def params(self, g, op):
        return quant.global_avg_pool_params(g, op)

    def ref_s8(self, g, op, args):
        return global_avg_pool_s8(hwc_of(args[0], op), self.params(g, op))

    def ref_f32(self, g, op, args):
        return hwc_of(args[0], op).astype(np.float64).mean(axis=(0, 1)).astype(np.float32)

    def ref_f16(self, g, op, args):
        return f16.global_avg_pool(hwc_of(args[0], op))

    def _suffix(self, g, op) -> str:
        return "f16" if g.tensors[op.inputs[0]].dtype == "float16" else "f32"

    def emit(self, em, op):
        g = em.graph
        x = g.tensors[op.inputs[0]]
        if self.is_int8(g, op):
            return [em.call(em.kernel("tt_global_avg_pool_s8"), em.ptr(op.inputs[0]), em.dims(x),
                            em.requant(op, self.params(g, op)), em.ptr(op.outputs[0]))]
        half = self._suffix(g, op) == "f16"     # global_avg_pool(_backward)_f16_mve.c: the same bits
        return [em.call(em.kernel(f"tt_global_avg_pool_{self._suffix(g, op)}", allowed={"mve": half}),
                        em.ptr(op.inputs[0]), em.dims(x), em.ptr(op.outputs[0]))]

    def emit_backward(self, em, op, step, t):
        x = op.inputs[0]
        if x not in step.grad_inputs:
            return []
        sfx = self._suffix(em.graph, op)
        return [em.call(em.kernel(f"tt_global_avg_pool_grad_input_{sfx}", allowed={"mve": sfx == "f16"}),
                        em.dims(em.graph.tensors[x]),
                        t.grad(step.grad_out), t.acc(step, x), t.grad(step.grad_inputs[x]))]

    def vjp(self, ctx, op, dy, step):
        if not step.grad_inputs:
            return {}, {}
        x = ctx.graph.tensors[op.inputs[0]]
        if x.dtype == "float16":
            return {op.inputs[0]: f16.global_avg_pool_grad(dy, x.shape)}, {}
        dx = np.broadcast_to(dy / np.float32(x.shape[1] * x.shape[2]), x.shape).astype(np.float32)
        return {op.inputs[0]: dx}, {}


UNIT = GlobalAvgPool()
