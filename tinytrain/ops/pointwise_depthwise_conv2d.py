"""pointwise_depthwise_conv2d: a 1x1 conv2d fused with the depthwise conv reading its output
(tinytrain.passes.fuse_pw_dw), run row by row through a ring buffer so the expanded tensor
never exists in full (TinyEngine / MCUNetV2's idea, patch-free). int8, forward only: it
appears only in the frozen part of a training graph.

Inputs [x, w_pw, b_pw, w_dw, b_dw]. Attributes: stride, pad, dilation, activation of the
depthwise; pw_activation; intermediate (the tensor between the two: its quantization; its
arena bytes are the ring); scratch (= intermediate); pw_name, dw_name (original layers).
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ir import Graph, Op
from ..kernel_prep import conv2d_scratch_bytes
from .base import OpUnit, expect_rank4

FUSED = "pointwise_depthwise_conv2d"
FUSED_KERNEL = "tt_pointwise_depthwise_conv2d_s8"


def split_op(op: Op) -> tuple[Op, Op]:
    """The two original ops of a fused op (the reference and the requantization use them)."""
    a = op.attrs
    mid = a["intermediate"]
    pw = Op(a["pw_name"], "conv2d", [op.inputs[0], op.inputs[1], op.inputs[2]], [mid],
            dict(stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), activation=a["pw_activation"]))
    dw = Op(a["dw_name"], "depthwise_conv2d", [mid, op.inputs[3], op.inputs[4]], list(op.outputs),
            dict(stride=a["stride"], pad=a["pad"], dilation=a["dilation"], activation=a["activation"]))
    return pw, dw


def fuse_op(pw: Op, dw: Op) -> Op:
    a = dw.attrs
    attrs = dict(stride=tuple(a.get("stride", (1, 1))), pad=tuple(a.get("pad", (0, 0, 0, 0))),
                 dilation=tuple(a.get("dilation", (1, 1))), activation=a.get("activation", "none"),
                 pw_activation=pw.attrs.get("activation", "none"), intermediate=pw.outputs[0],
                 scratch=pw.outputs[0], pw_name=pw.name, dw_name=dw.name)
    return Op(f"{pw.name}+{dw.name}", FUSED, [pw.inputs[0], pw.inputs[1], pw.inputs[2],
                                              dw.inputs[1], dw.inputs[2]], list(dw.outputs), attrs)


def can_fuse(graph: Graph, pw: Op, dw: Op) -> bool:
    """pw is a 1x1, stride-1, unpadded int8 conv2d whose only reader is the depthwise dw."""
    if pw.type != "conv2d" or dw.type != "depthwise_conv2d":
        return False
    mid = pw.outputs[0]
    if dw.inputs[0] != mid or mid in graph.outputs or len(graph.consumers(mid)) != 1:
        return False
    w = graph.tensors[pw.inputs[1]]
    a = pw.attrs
    if w.shape[1:3] != (1, 1) or tuple(a.get("stride", (1, 1))) != (1, 1):
        return False
    if tuple(a.get("pad", (0, 0, 0, 0))) != (0, 0, 0, 0) or len(pw.inputs) < 3 or len(dw.inputs) < 3:
        return False
    x, t = graph.tensors[pw.inputs[0]], graph.tensors[mid]
    return len(x.shape) == 4 and x.dtype == t.dtype == "int8"


def ring_rows(graph: Graph, op: Op) -> int:
    """Rows of the expanded tensor the fused kernel keeps: the dilated kernel height."""
    kh = graph.tensors[op.inputs[3]].shape[0]
    dh = op.attrs.get("dilation", (1, 1))[0]
    return min((kh - 1) * dh + 1, graph.tensors[op.attrs["intermediate"]].shape[1])


class PointwiseDepthwiseConv2D(OpUnit):
    type = FUSED
    summary = "1x1 conv2d + depthwise conv2d fused through a row ring (memory pass, int8, frozen part)"
    attrs = {"stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1), "activation": "none",
             "pw_activation": "none", "intermediate": None, "pw_name": None, "dw_name": None}
    frozen_only = True
    float32 = False

    def check(self, g, op):
        super().check(g, op)
        expect_rank4(g, op, op.inputs[0])
        if len(op.inputs) != 5 or not self.is_int8(g, op):
            raise UnsupportedError(op.name, f"{op.type} other than int8 [x, w_pw, b_pw, w_dw, b_dw]")
        from . import unit
        pw, dw = split_op(op)
        sub = Graph(g.name, g.tensors, [pw, dw], [op.inputs[0]], list(op.outputs))
        unit("conv2d").check(sub, pw)
        unit("depthwise_conv2d").check(sub, dw)

    def macs(self, g, op):
        from . import unit
        pw, dw = split_op(op)
        return unit("conv2d").macs(g, pw) + unit("depthwise_conv2d").macs(g, dw)

    def scratch_bytes(self, g, op) -> int:
        mid = g.tensors[op.attrs["intermediate"]]
        return ring_rows(g, op) * mid.shape[2] * mid.shape[3]

    def requant_table_bytes(self, g, op) -> int:
        return 8 * (g.tensors[op.attrs["intermediate"]].shape[-1] + g.tensors[op.outputs[0]].shape[-1])

    def ref_s8(self, g, op, args):
        from . import unit
        pw, dw = split_op(op)
        mid = unit("conv2d").run(g, pw, args[:3])
        return unit("depthwise_conv2d").run(g, dw, [mid, *args[3:]])

    def simd_kernel(self, g, op):
        return FUSED_KERNEL

    def kernel_scratch_bytes(self, g, op):
        """The variants compute the pointwise rows as their conv2d does: its scratch for a 1x1."""
        variant = op.attrs.get("variant")
        if not variant:
            return 0
        cin, mid_c = g.tensors[op.inputs[0]].shape[3], g.tensors[op.attrs["intermediate"]].shape[3]
        return conv2d_scratch_bytes(variant, 1, 1, cin, mid_c)

    def emit(self, em, op):
        from . import unit
        g = em.graph
        pw, dw = split_op(op)
        mid = g.tensors[op.attrs["intermediate"]]
        kh, kw, _ = g.tensors[op.inputs[3]].shape
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        q_pw, q_dw = unit("conv2d").params(g, pw), unit("depthwise_conv2d").params(g, dw)
        fn = em.variant_kernel(FUSED_KERNEL, op)
        dsp = fn.endswith("_dsp")
        args = [em.ptr(op.inputs[0]), em.dims(x), em.ptr(op.inputs[1]), em.ptr(op.inputs[2]),
                em.requant(pw, q_pw), *([em.rq_dsp(pw, q_pw)] if dsp else []), mid.shape[3],
                em.ptr(op.inputs[3]), em.ptr(op.inputs[4]), kh, kw, em.geom(op),
                em.requant(dw, q_dw), *([em.rq_dsp(dw, q_dw)] if dsp else []), em.ptr(op.outputs[0]),
                em.dims(y), em.view(op.attrs["scratch"]), ring_rows(g, op)]
        if fn != FUSED_KERNEL:
            args.append(em.kernel_scratch(op))
        return [em.call(fn, *args)]


UNIT = PointwiseDepthwiseConv2D()
