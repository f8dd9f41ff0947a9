"""Layers for the int8 kernel variants: random data, the numpy expectation (tinytrain.refops),
and the calls of the reference kernel and of each variant, on the host (ctypes) and in the
bare-metal harness (kernel_harness.Case). Shared by tests/test_kernels_simd.py and
bench/bench_kernels.py.

MACs are counted the same way for every op: every tap of every output, padded taps
included (conv: out_h*out_w*cout*kh*kw*cin; depthwise: out_h*out_w*c*kh*kw; fully
connected: in*out; fused pointwise+depthwise: both parts).
"""
from __future__ import annotations

import ctypes
from ctypes import byref
from dataclasses import dataclass, field

import numpy as np

import ckernels as ck
import kernel_harness as kh
from tinytrain import fixedpoint, kernel_prep, quant
from tinytrain.ops.conv2d import conv2d_s8
from tinytrain.ops.depthwise_conv2d import depthwise_conv2d_s8
from tinytrain.ops.fully_connected import fully_connected_s8
from tinytrain.ops.window import taps as window_taps, window_input
from tinytrain.ir import conv_out_size, same_padding

I8, I32 = np.int8, np.int32


# --- data ------------------------------------------------------------------------------------

def pads_of(h, w, k, stride, dil, pad) -> tuple[int, int, int, int]:
    if pad == "same":
        _, t, b = same_padding(h, k[0], stride[0], dil[0])
        _, l, r = same_padding(w, k[1], stride[1], dil[1])
        return (t, b, l, r)
    if pad == "valid":
        return (0, 0, 0, 0)
    return tuple(int(v) for v in pad)


def make_requant(rng, channels: int, *, act="none", kind="per-channel", acc_std=1000.0,
                 in_zp=None, out_zp=None) -> dict:
    """A requantization dict as tinytrain.quant makes them, mapping an accumulator of std
    acc_std to ~50 LSB. kind: per-channel (shifts +-2 around that), per-tensor (one
    multiplier for all), exact (shifts -1..+1, the reference-arithmetic path of the DSP
    kernels; use with small accumulators), mixed (per-channel, one channel in four on the
    reference-arithmetic path)."""
    _, base = quant.quantize_multiplier(50.0 / max(acc_std, 1e-3))
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=channels)
    shift = base + rng.integers(-2, 3, size=channels)
    if kind == "per-tensor":
        mult[:] = mult[0]
        shift[:] = shift[0]
    elif kind == "exact":
        shift = rng.integers(-1, 2, size=channels)
    elif kind == "mixed":
        shift[::4] = -1
    mult[rng.random(channels) < 0.1] = 1 << 30          # exact powers of two
    if out_zp is None:
        out_zp = int(rng.integers(-128, 128))
    if in_zp is None:
        in_zp = int(rng.integers(-128, 128))
    act_min, act_max = {"none": (-128, 127), "relu": (out_zp, 127),
                        "relu6": (out_zp, min(127, out_zp + 60))}[act]
    return dict(in_zp=in_zp, out_zp=out_zp, act_min=act_min, act_max=act_max,
                multiplier=mult.astype(I32), shift=shift.astype(I32))


def rand_s8(rng, shape, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=shape).astype(I8)


INT32_MIN, INT32_MAX = fixedpoint.INT32_MIN, fixedpoint.INT32_MAX


def sat32(v) -> np.ndarray:
    """Saturated to the int32 range (tt_sat_add_s32's result)."""
    return np.clip(np.asarray(v, np.int64), INT32_MIN, INT32_MAX)


# --- layers ----------------------------------------------------------------------------------

@dataclass
class Conv:
    """conv2d (depthwise=False) or depthwise_conv2d, HWC / OHWI / HWC weights."""
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None
    stride: tuple
    pad: tuple               # (top, bottom, left, right)
    dil: tuple
    q: dict
    depthwise: bool = False
    name: str = ""

    @property
    def kind(self):
        return "depthwise_conv2d" if self.depthwise else "conv2d"

    @property
    def k(self):
        return self.w.shape[0:2] if self.depthwise else self.w.shape[1:3]

    @property
    def cout(self):
        return self.w.shape[2] if self.depthwise else self.w.shape[0]

    @property
    def out_hw(self):
        h, w = self.x.shape[:2]
        return (conv_out_size(h, self.k[0], self.stride[0], self.pad[0], self.pad[1], self.dil[0]),
                conv_out_size(w, self.k[1], self.stride[1], self.pad[2], self.pad[3], self.dil[1]))

    @property
    def out_shape(self):
        return (*self.out_hw, self.cout)

    @property
    def macs(self):
        oh, ow = self.out_hw
        taps = self.k[0] * self.k[1] * (1 if self.depthwise else self.x.shape[2])
        return oh * ow * self.cout * taps

    def expected(self) -> np.ndarray:
        fn = depthwise_conv2d_s8 if self.depthwise else conv2d_s8
        return fn(self.x, self.w, self.bias, self.stride, self.pad, self.dil, self.q, self.out_hw)

    def dot(self) -> np.ndarray:
        """The exact sums of (x - in_zp) * w per output (int64, no bias; padded taps count 0)."""
        buf = window_input(self.x.astype(np.int64) - self.q["in_zp"], self.out_hw, self.k, self.stride,
                           self.pad, self.dil, 0)
        acc = np.zeros(self.out_shape, np.int64)
        w = self.w.astype(np.int64)
        for ky, kx, view in window_taps(buf, self.out_hw, self.k, self.stride, self.dil):
            acc += view * w[ky, kx] if self.depthwise else view @ w[:, ky, kx, :].T
        return acc

    def scratch_bytes(self, variant: str) -> int:
        if self.depthwise:
            return 0
        if variant == "dsp":
            return kernel_prep.conv2d_dsp_scratch_bytes(self.k[0], self.k[1], self.x.shape[2])
        if variant == "mve":
            return kernel_prep.conv2d_mve_scratch_bytes(self.k[0], self.k[1], self.x.shape[2], self.cout)
        return 0

    # host
    def run_host(self, lib, variant: str | None) -> np.ndarray:
        out = np.full(self.out_shape, 99, dtype=I8)
        args = [ck.ptr(self.x), byref(ck.dims(self.x.shape)), ck.ptr(self.w), ck.ptr(self.bias),
                int(self.k[0]), int(self.k[1]), byref(ck.geom(self.stride, self.pad, self.dil)),
                byref(ck.requant(self.q))]
        op = "depthwise_conv2d" if self.depthwise else "conv2d"
        if variant is None:
            getattr(lib, f"tt_{op}_s8")(*args, ck.ptr(out), byref(ck.dims(out.shape)))
            return out
        keep = []
        if variant == "dsp":
            rq = np.ascontiguousarray(kernel_prep.requant_dsp(self.q))
            keep.append(rq)
            args.append(ck.ptr(rq))
        scratch = np.zeros(max(self.scratch_bytes(variant), 16), dtype=np.uint8)
        tail = [ck.ptr(scratch)] if not self.depthwise else []
        getattr(lib, f"tt_{op}_s8_{variant}")(*args, ck.ptr(out), byref(ck.dims(out.shape)), *tail)
        return out

    # harness
    def case(self, variant: str | None, expected: bool = True) -> kh.Case:
        op = "depthwise_conv2d" if self.depthwise else "conv2d"
        c = kh.Case(f"{op} {self.name}", out_bytes=int(np.prod(self.out_shape)), macs=self.macs,
                    expected=self.expected() if expected else None,
                    scratch_bytes=self.scratch_bytes(variant) if variant else 0)
        x, w = c.array("x", self.x), c.array("w", self.w)
        b = c.array("b", self.bias) if self.bias is not None else "NULL"
        common = (f"{x}, {c.dims(self.x.shape)}, {w}, {b}, {self.k[0]}, {self.k[1]}, "
                  f"{c.geom(self.stride, self.pad, self.dil)}, {c.requant(self.q)}")
        dout = c.dims(self.out_shape)
        c.ref = f"tt_{op}_s8({common}, tt_out, {dout});"
        if variant == "dsp":
            tail = "" if self.depthwise else ", tt_scratch"
            c.var = f"tt_{op}_s8_dsp({common}, {c.rq_dsp(self.q)}, tt_out, {dout}{tail});"
        elif variant == "mve":
            tail = "" if self.depthwise else ", tt_scratch"
            c.var = f"tt_{op}_s8_mve({common}, tt_out, {dout}{tail});"
        return c


def conv_layer(rng, h, w, cin, cout, k=(1, 1), stride=(1, 1), pad="valid", dil=(1, 1), *,
               act="none", kind="per-channel", depthwise=False, extreme=None, zp=None,
               bias=True, name="") -> Conv:
    """A random layer. extreme: 127 / -128 fill the input with that value and the weights with
    -128 (with the opposite extreme zero point); kind as make_requant ("exact": small data)."""
    if depthwise:
        cout = cin
    pad4 = pads_of(h, w, k, stride, dil, pad)
    wshape = (k[0], k[1], cin) if depthwise else (cout, k[0], k[1], cin)
    taps = k[0] * k[1] * (1 if depthwise else cin)
    if kind == "exact":
        x = rand_s8(rng, (h, w, cin), -3, 3)
        wt = rand_s8(rng, wshape, -1, 1)
        b = rng.integers(-3, 4, size=cout).astype(I32)
        q = make_requant(rng, cout, act=act, kind="exact", in_zp=0, out_zp=int(rng.integers(-20, 20)))
    else:
        x = rand_s8(rng, (h, w, cin)) if extreme is None else np.full((h, w, cin), extreme, I8)
        wt = rand_s8(rng, wshape) if extreme is None else np.full(wshape, -128, I8)
        b = rng.integers(-5000, 5000, size=cout).astype(I32)
        in_zp = zp if zp is not None else int(rng.integers(-20, 20))
        if extreme is not None:
            in_zp = 127 if extreme == -128 else -128
        q = make_requant(rng, cout, act=act, kind=kind, in_zp=in_zp,
                         out_zp=int(rng.integers(-128, 0)), acc_std=128 * 74 * np.sqrt(taps))
    return Conv(x, wt, b if bias else None, tuple(stride), pad4, tuple(dil), q, depthwise,
                name or f"{h}x{w}x{cin}->{cout} k{k[0]}x{k[1]} s{stride[0]}{stride[1]} "
                        f"p{''.join(map(str, pad4))} d{dil[0]}{dil[1]} {act} {kind}"
                        + (f" x={extreme}" if extreme is not None else "") + ("" if bias else " nobias"))


@dataclass
class FullyConnected:
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None
    q: dict
    name: str = ""

    kind = "fully_connected"

    @property
    def macs(self):
        return int(self.w.shape[0] * self.w.shape[1])

    def dot(self) -> np.ndarray:
        return (self.x.astype(np.int64) - self.q["in_zp"]) @ self.w.astype(np.int64).T

    def expected(self):
        return fully_connected_s8(self.x, self.w, self.bias, self.q)

    def run_host(self, lib, variant):
        out = np.full(self.w.shape[0], 99, dtype=I8)
        fn = getattr(lib, "tt_fully_connected_s8" + (f"_{variant}" if variant else ""))
        fn(ck.ptr(self.x), self.w.shape[1], ck.ptr(self.w), ck.ptr(self.bias), self.w.shape[0],
           byref(ck.requant(self.q)), ck.ptr(out))
        return out

    def case(self, variant, expected=True):
        c = kh.Case(f"fully_connected {self.name}", out_bytes=self.w.shape[0], macs=self.macs,
                    expected=self.expected() if expected else None)
        x, w = c.array("x", self.x), c.array("w", self.w)
        b = c.array("b", self.bias) if self.bias is not None else "NULL"
        args = f"{x}, {self.w.shape[1]}, {w}, {b}, {self.w.shape[0]}, {c.requant(self.q)}, tt_out"
        c.ref = f"tt_fully_connected_s8({args});"
        if variant:
            c.var = f"tt_fully_connected_s8_{variant}({args});"
        return c


def fc_layer(rng, n_in, n_out, *, act="none", extreme=None, bias=True, name="") -> FullyConnected:
    """A random fully connected layer (extreme as conv_layer)."""
    x = rand_s8(rng, (n_in,)) if extreme is None else np.full(n_in, extreme, I8)
    w = rand_s8(rng, (n_out, n_in)) if extreme is None else np.full((n_out, n_in), -128, I8)
    b = rng.integers(-3000, 3000, size=n_out).astype(I32)
    q = make_requant(rng, n_out, act=act, in_zp=int(rng.integers(-20, 20)) if extreme is None
                     else (127 if extreme == -128 else -128),
                     out_zp=int(rng.integers(-128, 10)), acc_std=128 * 74 * np.sqrt(n_in))
    q["shift"] = np.minimum(q["shift"], 30).astype(I32)
    return FullyConnected(x, w, b if bias else None, q, name or f"{n_in}->{n_out} {act}"
                          + (f" x={extreme}" if extreme is not None else "") + ("" if bias else " nobias"))


@dataclass
class InplaceDepthwise:
    """depthwise_conv2d_inplace: the output written over the input (inplace=True: stride 1,
    same shape) or to a separate buffer."""
    conv: Conv
    inplace: bool = True
    kind = "depthwise_conv2d_inplace"

    @property
    def name(self):
        return self.conv.name + (" in place" if self.inplace else " apart")

    @property
    def macs(self):
        return self.conv.macs

    def expected(self):
        return self.conv.expected()

    def scratch_bytes(self, variant):
        h, w, _ = self.conv.x.shape
        kh, kw = self.conv.k
        if variant is None:
            return h * w
        if (kh > 8 or kh * kw > 49):
            return h * w
        return ((kh - 1) * self.conv.dil[0] + 1) * w * (4 if variant == "dsp" else 8)

    def run_host(self, lib, variant):
        c = self.conv
        out = np.full(c.out_shape, 99, dtype=I8)
        if self.inplace:
            out[...] = c.x
        src = out if self.inplace else c.x
        scratch = np.zeros(max(self.scratch_bytes(variant), 16), dtype=np.uint8)
        args = [ck.ptr(src), byref(ck.dims(c.x.shape)), ck.ptr(c.w), ck.ptr(c.bias), int(c.k[0]), int(c.k[1]),
                byref(ck.geom(c.stride, c.pad, c.dil)), byref(ck.requant(c.q))]
        keep = []
        if variant == "dsp":
            rq = np.ascontiguousarray(kernel_prep.requant_dsp(c.q))
            keep.append(rq)
            args.append(ck.ptr(rq))
        fn = getattr(lib, "tt_depthwise_conv2d_inplace_s8" + (f"_{variant}" if variant else ""))
        fn(*args, ck.ptr(out), byref(ck.dims(out.shape)), ck.ptr(scratch))
        return out

    def case(self, variant, expected=True):
        c = self.conv
        case = kh.Case(f"depthwise_conv2d_inplace {self.name}", out_bytes=int(np.prod(c.out_shape)),
                       macs=c.macs, expected=self.expected() if expected else None,
                       scratch_bytes=max(self.scratch_bytes(None), self.scratch_bytes(variant) if variant else 0))
        x, w = case.array("x", c.x), case.array("w", c.w)
        b = case.array("b", c.bias) if c.bias is not None else "NULL"
        src = "tt_out" if self.inplace else x
        if self.inplace:
            case.pre = f"memcpy(tt_out, {x}, {c.x.size});"
        common = (f"{src}, {case.dims(c.x.shape)}, {w}, {b}, {c.k[0]}, {c.k[1]}, "
                  f"{case.geom(c.stride, c.pad, c.dil)}, {case.requant(c.q)}")
        dout = case.dims(c.out_shape)
        case.ref = f"tt_depthwise_conv2d_inplace_s8({common}, tt_out, {dout}, (int8_t *)tt_scratch);"
        if variant == "dsp":
            case.var = f"tt_depthwise_conv2d_inplace_s8_dsp({common}, {case.rq_dsp(c.q)}, tt_out, {dout}, tt_scratch);"
        elif variant == "mve":
            case.var = f"tt_depthwise_conv2d_inplace_s8_mve({common}, tt_out, {dout}, tt_scratch);"
        return case


@dataclass
class PointwiseDepthwise:
    """A 1x1 conv2d (stride 1, no padding) into mid_c channels fused with the depthwise conv
    reading it, through a ring of ring_rows expanded rows."""
    pw: Conv
    dw: Conv
    ring_rows: int
    name: str = ""
    kind = "pointwise_depthwise_conv2d"

    @property
    def macs(self):
        return self.pw.macs + self.dw.macs

    def expected(self):
        return self.dw.expected()

    @property
    def mid_c(self):
        return self.pw.cout

    def ring_bytes(self):
        return self.ring_rows * self.pw.x.shape[1] * self.mid_c

    def scratch_bytes(self, variant):
        cin = self.pw.x.shape[2]
        if variant == "dsp":
            return kernel_prep.conv2d_dsp_scratch_bytes(1, 1, cin)
        if variant == "mve":
            return kernel_prep.conv2d_mve_scratch_bytes(1, 1, cin, self.mid_c)
        return 0

    def run_host(self, lib, variant):
        pw, dw = self.pw, self.dw
        out = np.full(dw.out_shape, 99, dtype=I8)
        ring = np.zeros(self.ring_bytes(), dtype=I8)
        scratch = np.zeros(max(self.scratch_bytes(variant), 16), dtype=np.uint8)
        keep = []
        args = [ck.ptr(pw.x), byref(ck.dims(pw.x.shape)), ck.ptr(pw.w), ck.ptr(pw.bias), byref(ck.requant(pw.q))]
        if variant == "dsp":
            rq = np.ascontiguousarray(kernel_prep.requant_dsp(pw.q))
            keep.append(rq)
            args.append(ck.ptr(rq))
        args += [self.mid_c, ck.ptr(dw.w), ck.ptr(dw.bias), int(dw.k[0]), int(dw.k[1]),
                 byref(ck.geom(dw.stride, dw.pad, dw.dil)), byref(ck.requant(dw.q))]
        if variant == "dsp":
            rq = np.ascontiguousarray(kernel_prep.requant_dsp(dw.q))
            keep.append(rq)
            args.append(ck.ptr(rq))
        args += [ck.ptr(out), byref(ck.dims(out.shape)), ck.ptr(ring), self.ring_rows]
        if variant:
            args.append(ck.ptr(scratch))
        getattr(lib, "tt_pointwise_depthwise_conv2d_s8" + (f"_{variant}" if variant else ""))(*args)
        return out

    def case(self, variant, expected=True):
        pw, dw = self.pw, self.dw
        ring = (self.ring_bytes() + 15) & ~15
        case = kh.Case(f"pointwise_depthwise_conv2d {self.name}", out_bytes=int(np.prod(dw.out_shape)),
                       macs=self.macs, expected=self.expected() if expected else None,
                       scratch_bytes=ring + (self.scratch_bytes(variant) if variant else 0))
        x, wp, wd = case.array("x", pw.x), case.array("wpw", pw.w), case.array("wdw", dw.w)
        bp = case.array("bpw", pw.bias) if pw.bias is not None else "NULL"
        bd = case.array("bdw", dw.bias) if dw.bias is not None else "NULL"
        qp, qd = case.requant(pw.q), case.requant(dw.q)
        head = f"{x}, {case.dims(pw.x.shape)}, {wp}, {bp}, {qp}"
        mid = f"{self.mid_c}, {wd}, {bd}, {dw.k[0]}, {dw.k[1]}, {case.geom(dw.stride, dw.pad, dw.dil)}, {qd}"
        tail = f"tt_out, {case.dims(dw.out_shape)}, (int8_t *)tt_scratch, {self.ring_rows}"
        case.ref = f"tt_pointwise_depthwise_conv2d_s8({head}, {mid}, {tail});"
        extra = f"(uint8_t *)tt_scratch + {ring}"
        if variant == "dsp":
            case.var = (f"tt_pointwise_depthwise_conv2d_s8_dsp({head}, {case.rq_dsp(pw.q)}, {mid}, "
                        f"{case.rq_dsp(dw.q)}, {tail}, {extra});")
        elif variant == "mve":
            case.var = f"tt_pointwise_depthwise_conv2d_s8_mve({head}, {mid}, {tail}, {extra});"
        return case


def pw_dw_layer(rng, h, w, cin, mid_c, k=(3, 3), stride=(1, 1), pad="same", dil=(1, 1), *, act="relu6",
                kind="per-channel", ring_extra=0, name="") -> PointwiseDepthwise:
    """A random fused pair; the intermediate's quantization is shared (q_pw.out_zp is
    q_dw.in_zp, as the fusion pass guarantees)."""
    pw = conv_layer(rng, h, w, cin, mid_c, act=act, kind=kind)
    mid = pw.expected()
    dw = conv_layer(rng, h, w, mid_c, None, k, stride, pad, dil, act=act, kind=kind, depthwise=True)
    dw.x = mid
    dw.q["in_zp"] = pw.q["out_zp"]
    ring_rows = min((k[0] - 1) * dil[0] + 1, h) + ring_extra
    return PointwiseDepthwise(pw, dw, ring_rows, name or f"{h}x{w}x{cin}->{mid_c} k{k[0]}x{k[1]} s{stride[0]} "
                              f"d{dil[0]} {act} {kind} ring {ring_rows}")


# --- int32 limits: biases where the reference's saturating add matters ----------------------

# channel c of a layer takes LIMIT_ROLES[c % len]: where its bias sits (at INT32_MAX / MIN:
# every sum of that sign saturates; "max-" / "min-": the limit minus the channel's median sum,
# so about half its outputs saturate; "normal": a small bias) and its requantisation shift
# (-22: the DSP one-SMLAL path; -23..-25: the reference-arithmetic path, both map a sum near
# 2^31 into the int8 range; 0 and 1 with the largest multiplier: the rescaled value lands
# next to the int32 limit before out_zp is added; None: a shift giving varied outputs)
LIMIT_ROLES = (("max", -24), ("min", -24), ("max-", -22), ("min-", -22), ("max-", -25), ("min-", -23),
               ("max", 0), ("min", 0), ("max-", 1), ("normal", None), ("min-", 1))
# every channel on the DSP one-SMLAL path (the kernels' all-fast branches)
LIMIT_ROLES_FAST = (("max", -22), ("min", -22), ("max-", -21), ("min-", -22), ("normal", None))


def limit_biases(layer, rng, roles=LIMIT_ROLES):
    """Give a Conv / FullyConnected layer biases and requantisation by LIMIT_ROLES (its
    expectation, the op unit's numpy, adds the bias saturating as the C reference does:
    fixedpoint.add_bias_s32)."""
    dot = layer.dot()
    dot = dot.reshape(-1, dot.shape[-1])
    n = dot.shape[1]
    _, base = quant.quantize_multiplier(50.0 / max(float(np.std(dot)), 1.0))
    bias = rng.integers(-5000, 5000, size=n).astype(np.int64)
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=n)
    shift = np.full(n, base, np.int64)
    for c in range(n):
        where, s = roles[c % len(roles)]
        med = int(np.median(dot[:, c]))
        bias[c] = {"max": INT32_MAX, "min": INT32_MIN, "max-": INT32_MAX - med, "min-": INT32_MIN - med}.get(
            where, bias[c])
        if s is not None:
            shift[c] = s
            if s >= 0:
                mult[c] = (1 << 31) - 1
    layer.bias = sat32(bias).astype(I32)
    layer.q["multiplier"], layer.q["shift"] = mult.astype(I32), shift.astype(I32)
    return layer


def _set_out_zp(q: dict, out_zp: int, act: str) -> None:
    q["out_zp"] = out_zp
    q["act_min"], q["act_max"] = {"none": (-128, 127), "relu": (out_zp, 127),
                                  "relu6": (out_zp, min(127, out_zp + 60))}[act]


def limit_conv_layer(rng, h, w, cin, cout, k=(1, 1), stride=(1, 1), pad="valid", dil=(1, 1), *, zp, out_zp,
                     act="none", depthwise=False, fast=False) -> Conv:
    """A random layer (full-range data, in_zp = zp) with LIMIT_ROLES biases and shifts
    (fast: LIMIT_ROLES_FAST)."""
    layer = conv_layer(rng, h, w, cin, cout, k, stride, pad, dil, act=act, zp=zp, depthwise=depthwise)
    _set_out_zp(layer.q, out_zp, act)
    layer.name += f" int32 limits{' fast' if fast else ''} zp{zp} out_zp{out_zp}"
    return limit_biases(layer, rng, LIMIT_ROLES_FAST if fast else LIMIT_ROLES)


def limit_fc_layer(rng, n_in, n_out, *, zp, out_zp, act="none") -> FullyConnected:
    layer = fc_layer(rng, n_in, n_out, act=act)
    layer.q["in_zp"] = zp
    _set_out_zp(layer.q, out_zp, act)
    layer.name += f" int32 limits zp{zp} out_zp{out_zp}"
    return limit_biases(layer, rng)


def fold_boundary_layer(rng, h, w, c, cout, k, *, sign, beyond, depthwise=False) -> Conv:
    """Every product at its extreme ((x - in_zp) * w = sign * 255 * 128; padded taps count 0,
    so border pixels sum fewer) and every bias at the edge of tt_bias_fold_exact: at
    INT32_MAX - bound (sign +1) or INT32_MIN + bound (sign -1), bound = taps * 255 * 128, so
    the interior pixels' sums end exactly on the int32 limit (the variants fold the bias);
    beyond: channel 1's bias one step further, past the proof (the saturating path; its
    interior sums saturate by one)."""
    layer = conv_layer(rng, h, w, c, cout, k, (1, 1), "same", extreme=127 if sign < 0 else -128,
                       depthwise=depthwise)
    taps = k[0] * k[1] * (1 if depthwise else c)
    bound = taps * 255 * 128
    bias = np.full(layer.cout, INT32_MAX - bound if sign > 0 else INT32_MIN + bound, np.int64)
    if beyond:
        bias[1] += sign
    layer.bias = bias.astype(I32)
    layer.q["shift"] = np.full(layer.cout, -24, I32)
    _set_out_zp(layer.q, -100 * sign, "none")           # sums near the limit land inside int8
    layer.name += f" fold boundary {'+' if sign > 0 else '-'}{' beyond' if beyond else ''}"
    return layer


def limit_pw_dw_layer(rng, h, w, cin, mid_c, k=(3, 3), stride=(1, 1), pad="same", dil=(1, 1), *, zp,
                      out_zp) -> PointwiseDepthwise:
    """Both halves with LIMIT_ROLES biases (the pointwise one's outputs, saturated as the
    reference does, are the depthwise one's input)."""
    pw = limit_conv_layer(rng, h, w, cin, mid_c, zp=zp, out_zp=int(rng.integers(-100, 100)))
    dw = conv_layer(rng, h, w, mid_c, None, k, stride, pad, dil, depthwise=True)
    dw.x = pw.expected()
    dw.q["in_zp"] = pw.q["out_zp"]
    _set_out_zp(dw.q, out_zp, "none")
    limit_biases(dw, rng)
    ring_rows = min((k[0] - 1) * dil[0] + 1, h)
    return PointwiseDepthwise(pw, dw, ring_rows, f"{h}x{w}x{cin}->{mid_c} k{k[0]}x{k[1]} s{stride[0]} "
                              f"d{dil[0]} int32 limits zp{zp} out_zp{out_zp} ring {ring_rows}")


@dataclass
class Requantize:
    """The requantisation alone: int32 accumulators (pixels, channels) -> int8, TFLite's
    double rounding + out_zp + activation clamp. `macs` counts outputs here."""
    acc: np.ndarray
    q: dict
    name: str = ""
    kind = "requantize"

    @property
    def macs(self):
        return int(self.acc.size)

    def expected(self):
        out = fixedpoint.mul_by_quantized_multiplier(self.acc.astype(np.int64), self.q["multiplier"], self.q["shift"])
        return np.clip(out + self.q["out_zp"], self.q["act_min"], self.q["act_max"]).astype(I8)

    def case(self, variant, expected=True):
        p, c = self.acc.shape
        case = kh.Case(f"requantize {self.name}", out_bytes=int(self.acc.size), macs=self.macs,
                       expected=self.expected() if expected else None)
        acc, q = case.array("acc", self.acc.astype(I32)), case.requant(self.q)
        loop = f"int32_t p, c; const int32_t *a = {acc}; int8_t *o = tt_out; for (p = 0; p < {p}; p++) "
        case.ref = "{ " + loop + f"for (c = 0; c < {c}; c++) *o++ = tt_requantize_s8(*a++, {q}, c); }}"
        if variant == "dsp":
            # as the kernels do: the one-SMLAL path alone when every channel takes it, the
            # activation clamp only when the range is narrower than int8 (SSAT does int8)
            rq = case.rq_dsp(self.q)
            one = (f"const tt_rq_dsp *r = {rq} + c; int32_t v = tt_requant_dsp_fast3(*a++, r->mult, r->hi, "
                   f"r->shift); ")
            case.var = ("{ const int32_t lo = (" + q + ")->act_min, hi = (" + q + ")->act_max; "
                        f"const int32_t fast = tt_rq_dsp_all_fast({rq}, {c}), clamp = tt_rq_needs_clamp({q}); "
                        + loop +
                        f"{{ if (fast && !clamp) {{ for (c = 0; c < {c}; c++) {{ {one}*o++ = (int8_t)v; }} }} "
                        f"else if (fast) {{ for (c = 0; c < {c}; c++) {{ {one}*o++ = (int8_t)tt_clamp_i32(v, lo, hi); }} }} "
                        f"else {{ for (c = 0; c < {c}; c++) {{ const int32_t v = tt_requant_dsp(*a++, {rq} + c, "
                        f"{q}, c); *o++ = (int8_t)tt_clamp_i32(v, lo, hi); }} }} }} }}")
        elif variant == "mve":
            case.var = (f"{{ const tt_requant *rq = {q}; const int32x4_t lo = vdupq_n_s32(rq->act_min), "
                        f"hi = vdupq_n_s32(rq->act_max), zero = vdupq_n_s32(0); int32_t p, c; "
                        f"for (p = 0; p < {p}; p++) for (c = 0; c < {c}; c += 4) {{ "
                        f"const mve_pred16_t pr = vctp32q((uint32_t)({c} - c)); "
                        f"const int32x4_t sh = vldrwq_z_s32(rq->shift + c, pr); "
                        f"const int32x4_t v = tt_requant_s32x4_mve(vldrwq_z_s32({acc} + p * {c} + c, pr), "
                        f"vldrwq_z_s32(rq->multiplier + c, pr), vmaxq_s32(sh, zero), vminq_s32(sh, zero), "
                        f"rq->out_zp, lo, hi); vstrbq_p_s32(tt_out + p * {c} + c, v, pr); }} }}")
        return case


def requant_case(rng, pixels, channels, *, edges=False, limits=False, act="none", out_zp=None,
                 name="") -> Requantize:
    """Accumulators of a conv-like layer (std ~2^16); edges=True: int32 extremes, zeros, ties
    around every rounding, and multipliers / shifts across both DSP paths; limits=True (with
    edges): the first channels take the largest multiplier at shifts 0..2, so accumulators
    near the int32 limits (or half, a quarter of them) rescale next to the limit before
    out_zp is added."""
    q = make_requant(rng, channels, act=act, acc_std=2 ** 16, out_zp=out_zp)
    acc = rng.normal(0, 2 ** 16, size=(pixels, channels)).astype(np.int64)
    if edges:
        q["shift"] = rng.integers(-31, 4, size=channels).astype(I32)
        q["shift"][:4] = [-2, -22, -23, -1]
        q["multiplier"][:3] = [1 << 30, (1 << 31) - 1, (1 << 30) + 1]
        specials = np.array([-(1 << 31), (1 << 31) - 1, 0, 1, -1, 2, -2, 1 << 20, -(1 << 20)], np.int64)
        acc[:, :] = rng.integers(-(1 << 31), 1 << 31, size=acc.shape)
        acc[: specials.size] = specials[:, None]
        small = rng.integers(-4096, 4097, size=acc[specials.size:].shape)
        acc[specials.size:specials.size + small.shape[0] // 2] = small[: small.shape[0] // 2]
    if limits:
        q["shift"][:6] = [0, 0, 1, 1, 2, 2]
        q["multiplier"][:6] = (1 << 31) - 1
        near = np.array([INT32_MAX, INT32_MAX - 1, INT32_MAX - 100, INT32_MIN, INT32_MIN + 1, INT32_MIN + 100,
                         INT32_MAX >> 1, (INT32_MAX >> 1) - 60, INT32_MIN >> 1, (INT32_MIN >> 1) + 60,
                         INT32_MAX >> 2, INT32_MIN >> 2], np.int64)
        acc[-near.size:] = near[:, None]
    return Requantize(acc.astype(I32), q, name or f"{pixels}x{channels} {act}" + (" edges" if edges else "")
                      + (f" int32 limits out_zp{q['out_zp']}" if limits else ""))


# --- training: conv2d input gradient (float, int8 weights) ------------------------------------

F32 = np.float32


@dataclass
class ConvGradInput:
    """tt_conv2d_grad_input_s8 and its variants: float gradients of an int8-weight conv2d.
    Their floats must equal the reference's bit for bit: there is no numpy expectation (the
    C's order of float additions is the contract), the host build of the reference is it."""
    in_shape: tuple           # (h, w, cin)
    out_shape: tuple          # (oh, ow, cout)
    w: np.ndarray             # (cout, kh, kw, cin) int8
    scales: np.ndarray        # float32, cout or 1
    gy: np.ndarray            # (oh, ow, cout) float32
    gx0: np.ndarray           # (h, w, cin) float32: the destination before the call
    stride: tuple
    pad: tuple                # (top, bottom, left, right)
    dil: tuple
    accumulate: int
    name: str = ""
    op: str = "conv2d"        # or depthwise_conv2d (w: (kh, kw, c))

    @property
    def kind(self):
        return f"{self.op}_grad_input"

    @property
    def khw(self):
        return self.w.shape[:2] if self.op == "depthwise_conv2d" else self.w.shape[1:3]

    @property
    def macs(self):
        return int(self.gy.size * (self.khw[0] * self.khw[1] if self.op == "depthwise_conv2d" else self.w[0].size))

    def run_host(self, lib, variant):
        fn = getattr(lib, f"tt_{self.kind}_s8" + (f"_{variant}" if variant else ""))
        s = ck.conv_shape(self.in_shape, self.out_shape, *self.khw, self.stride, self.pad, self.dil)
        wq = ck.weight_quant(self.scales, int(self.scales.size > 1))
        gy, w = ck.carray(self.gy, F32), ck.carray(self.w, I8)
        gx = ck.carray(self.gx0, F32).copy()
        fn(s, ck.ptr(gy), ck.ptr(w), wq, ctypes.c_int32(self.accumulate), ck.ptr(gx))
        return gx

    def case(self, variant, expected=None):
        c = kh.Case(f"{self.kind} {self.name}", out_bytes=int(self.gx0.size) * 4, macs=self.macs,
                    expected=expected)
        gy, w = c.array("gy", self.gy.astype(F32)), c.array("w", self.w.astype(I8))
        scales, gx0 = c.array("scale", self.scales.astype(F32)), c.array("gx0", self.gx0.astype(F32))
        din, dout = c.dims(self.in_shape), c.dims(self.out_shape)
        geom = c.geom(self.stride, self.pad, self.dil)
        shape, wq = c._name("shape"), c._name("wq")
        c.decls.append(f"static const tt_conv_shape {shape} = {{{din}, {dout}, {self.khw[0]}, "
                       f"{self.khw[1]}, {geom}}};")
        c.decls.append(f"static const tt_weight_quant {wq} = {{{scales}, {int(self.scales.size > 1)}}};")
        c.pre = f"memcpy(tt_out, {gx0}, {self.gx0.size * 4});"
        args = f"&{shape}, {gy}, {w}, &{wq}, {self.accumulate}, (float *)tt_out"
        c.ref = f"tt_{self.kind}_s8({args});"
        if variant:
            c.var = f"tt_{self.kind}_s8_{variant}({args});"
        return c


def grad_input_case(rng, h, w, cin, cout, k=(1, 1), stride=(1, 1), pad="valid", dil=(1, 1), *,
                    per_channel=True, accumulate=0, zeros=0.3, tiny=False, name="") -> ConvGradInput:
    """cout None: a depthwise layer (cout = cin)."""
    """Random gradients (a fraction `zeros` of them 0, as a ReLU mask leaves them), int8
    weights with both extremes; tiny=True: gradients and scales whose products and sums are
    denormal (the _mve variant must then fall back to the reference)."""
    kh_, kw_ = k
    pad4 = sc_pad(h, w, k, stride, pad, dil)
    oh = (h + pad4[0] + pad4[1] - ((kh_ - 1) * dil[0] + 1)) // stride[0] + 1
    ow = (w + pad4[2] + pad4[3] - ((kw_ - 1) * dil[1] + 1)) // stride[1] + 1
    op = "depthwise_conv2d" if cout is None else "conv2d"
    cout = cin if cout is None else cout
    wt = rng.integers(-128, 128, size=(kh_, kw_, cin) if op == "depthwise_conv2d" else (cout, kh_, kw_, cin)).astype(I8)
    wt.reshape(-1)[:2] = [-128, 127]
    scales = (rng.uniform(0.5, 2.0, size=cout if per_channel else 1) * 0.01).astype(F32)
    gy = rng.standard_normal((oh, ow, cout)).astype(F32) * F32(1e-3)
    gy[rng.random(gy.shape) < zeros] = 0.0
    if tiny:
        gy = (gy * F32(1e-33)).astype(F32)
        scales = (scales * F32(1e-3)).astype(F32)
    gx0 = (rng.standard_normal((h, w, cin)).astype(F32) * F32(1e-3) if accumulate
           else np.full((h, w, cin), 7.0, F32))       # overwritten (accumulate 0)
    if accumulate and tiny:
        gx0.reshape(-1)[::7] = F32(1e-40)           # a denormal already in the destination
    label = name or (f"{h}x{w}x{cin} -> {'dw' if op == 'depthwise_conv2d' else cout} k{kh_}{kw_} s{stride[0]}{stride[1]} d{dil[0]}{dil[1]} "
                     f"{'pc' if per_channel else 'pt'}{' acc' if accumulate else ''}{' tiny' if tiny else ''}")
    return ConvGradInput((h, w, cin), (oh, ow, cout), wt, scales, gy, gx0, tuple(stride), tuple(pad4), tuple(dil),
                         accumulate, label, op)


def sc_pad(h, w, k, stride, pad, dil):
    """(top, bottom, left, right) of "valid", "same" (TFLite's) or an explicit 4-tuple."""
    if not isinstance(pad, str):
        return tuple(pad)
    if pad == "valid":
        return (0, 0, 0, 0)
    out = []
    for n, kk, s, d in ((h, k[0], stride[0], dil[0]), (w, k[1], stride[1], dil[1])):
        eff = (kk - 1) * d + 1
        total = max((-(-n // s) - 1) * s + eff - n, 0)
        out += [total // 2, total - total // 2]
    return tuple(out)
