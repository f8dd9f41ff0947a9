"""Cases of the int8 weight-gradient / fused-update kernels of conv2d and depthwise_conv2d
(tt_<op>_grad_weight_s8, tt_<op>_update_weight_s8) and their variants (_dsp, _mve): random
data, the calls on the host (ctypes) and in the bare-metal harness (kernel_harness.Case).
Their floats and bytes must equal the reference's: the reference kernel (the host build, and
the device's build under QEMU) is the expectation. Shared by tests/test_kernels_update_simd.py
and bench/bench_kernels.py.

MACs as bench_kernels counts them: every tap of every output, over the trained channels
(conv: out_h*out_w*cout*kh*kw*k; depthwise: out_h*out_w*k*kh*kw).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

import ckernels as ck
import kernel_harness as kh
from simd_cases import sc_pad

I8, I32, F32 = np.int8, np.int32, np.float32
MODES = ("nearest", "stochastic", "residual", "shadow", "float")


@dataclass
class WeightUpdate:
    """One call: op conv2d or depthwise_conv2d; what "update" (the fused QAS update: the
    weights, momentum, shadow / residual and the PRNG state are the output) or "grad" (the
    weight gradient, floats)."""
    op: str
    what: str
    in_shape: tuple            # (h, w, cin)
    out_shape: tuple           # (oh, ow, cout)
    khw: tuple
    stride: tuple
    pad: tuple                 # (top, bottom, left, right)
    dil: tuple
    k: int                     # trained channels
    index: np.ndarray | None   # int32 (k,) or None
    x_channels: int
    x: np.ndarray              # (h, w, x_channels) int8
    x_scale: float
    x_zp: int
    gy: np.ndarray             # (oh, ow, cout) float32
    w: np.ndarray              # conv (cout, kh, kw, cin) / depthwise (kh, kw, c) int8
    scales: np.ndarray         # float32 (cout or 1)
    mode: str = "stochastic"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    m0: np.ndarray | None = None        # momentum buffer, float32 (elements)
    shadow0: np.ndarray | None = None
    residual0: np.ndarray | None = None
    rng_state: int = 0
    accumulate: int = 0
    gw0: np.ndarray | None = None       # grad: the destination before the call
    name: str = ""

    @property
    def cin(self):
        return self.in_shape[2]

    @property
    def elements(self):
        return self.khw[0] * self.khw[1] * self.k * (self.out_shape[2] if self.op == "conv2d" else 1)

    @property
    def macs(self):
        return self.out_shape[0] * self.out_shape[1] * self.elements

    @property
    def kind(self):
        return f"{self.op}_{'update_weight' if self.what == 'update' else 'grad_weight'}"

    # --- host ------------------------------------------------------------------------------
    def run_host(self, lib, variant):
        """The outputs (a dict of arrays) of the reference (variant None) or a variant."""
        fn = getattr(lib, f"tt_{self.kind}_s8" + (f"_{variant}" if variant else ""))
        s = ck.conv_shape(self.in_shape, self.out_shape, *self.khw, self.stride, self.pad, self.dil)
        ch = ck.channels(self.cin, self.k, self.index, self.x_channels)
        xq = ck.act_quant(self.x_scale, self.x_zp)
        x, gy = ck.carray(self.x, I8), ck.carray(self.gy, F32)
        if self.what == "grad":
            gw = (np.full(self.elements, 7.0, F32) if self.gw0 is None else self.gw0).astype(F32).copy()
            fn(s, ch, ck.ptr(x), xq, ck.ptr(gy), ctypes.c_int32(self.accumulate), ck.ptr(gw))
            return {"grad_w": gw}
        w = ck.carray(self.w, I8).copy()
        wq = ck.weight_quant(self.scales, int(self.scales.size > 1))
        st = self.state()
        rng = ck.TtRng(self.rng_state)
        u = ck.update(self.lr, self.momentum, self.weight_decay, mode=self.mode, m=st.get("momentum"),
                      shadow=st.get("shadow"), residual=st.get("residual"), rng=rng)
        scratch = np.zeros(self.khw[0] * self.khw[1] * (self.k if self.op == "conv2d" else 1), F32)
        fn(s, ch, ck.ptr(w), wq, ck.ptr(x), xq, ck.ptr(gy), u, ck.ptr(scratch))
        return {"w": w, **st, "rng": np.array([rng.state], np.uint32)}

    def state(self) -> dict:
        st = {}
        if self.m0 is not None:
            st["momentum"] = self.m0.astype(F32).copy()
        if self.mode == "shadow":
            st["shadow"] = self.shadow0.astype(F32).copy()
        if self.mode == "residual":
            st["residual"] = self.residual0.astype(I8).copy()
        return st

    # --- QEMU ------------------------------------------------------------------------------
    def out_layout(self):
        """(name, initial array) of what the call writes, packed in tt_out (4-byte aligned)."""
        if self.what == "grad":
            return [("grad_w", (np.full(self.elements, 7.0, F32) if self.gw0 is None else self.gw0).astype(F32))]
        parts = [("w", self.w.astype(I8).reshape(-1))]
        parts += list(self.state().items())
        parts.append(("rng", np.array([self.rng_state], np.uint32)))
        return parts

    def case(self, variant, expected: dict | None = None):
        parts, offs, off = self.out_layout(), [], 0
        for _, a in parts:
            offs.append(off)
            off += (a.nbytes + 3) & ~3
        exp = None
        if expected is not None:
            exp = np.zeros(off, np.uint8)
            for (name, _), o in zip(parts, offs):
                b = np.ascontiguousarray(expected[name]).view(np.uint8).reshape(-1)
                exp[o:o + b.size] = b
            exp = exp.view(np.int8)
        c = kh.Case(f"{self.kind} {self.name}", out_bytes=off, macs=self.macs,
                    expected=exp)
        init = np.zeros(off, np.uint8)
        for (_, a), o in zip(parts, offs):
            b = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
            init[o:o + b.size] = b
        init_c = c.array("init", init)
        c.pre = f"memcpy(tt_out, {init_c}, {off});"
        x, gy = c.array("x", self.x.astype(I8)), c.array("gy", self.gy.astype(F32))
        din, dout = c.dims(self.in_shape), c.dims(self.out_shape)
        geom = c.geom(self.stride, self.pad, self.dil)
        shape, chn, xq = c._name("shape"), c._name("ch"), c._name("xq")
        idx = "NULL" if self.index is None else c.array("idx", self.index.astype(I32))
        c.decls.append(f"static const tt_conv_shape {shape} = {{{din}, {dout}, {self.khw[0]}, {self.khw[1]}, {geom}}};")
        c.decls.append(f"static const tt_channels {chn} = {{{self.cin}, {self.k}, {idx}, {self.x_channels}}};")
        c.decls.append(f"static const tt_act_quant {xq} = {{{float(np.float32(self.x_scale)).hex()}f, {self.x_zp}}};")
        head = f"&{shape}, &{chn}"
        if self.what == "grad":
            args = f"{head}, {x}, &{xq}, {gy}, {self.accumulate}, (float *)tt_out"
        else:
            at = dict(zip([p[0] for p in parts], offs))
            scales, wq, hp, u = c.array("scale", self.scales.astype(F32)), c._name("wq"), c._name("hp"), c._name("u")
            c.decls.append(f"static const tt_weight_quant {wq} = {{{scales}, {int(self.scales.size > 1)}}};")
            c.decls.append(f"static const tt_hparams {hp} = {{{float(np.float32(self.lr)).hex()}f, "
                           f"{float(np.float32(self.momentum)).hex()}f, {float(np.float32(self.weight_decay)).hex()}f}};")

            def view(name, ctype):
                return f"({ctype} *)(void *)(tt_out_buf + {at[name]})" if name in at else "NULL"
            c.decls.append(f"static const tt_update {u} = {{&{hp}, {ck.UPDATE_CODES[self.mode]}, "
                           f"{view('momentum', 'float')}, {view('shadow', 'float')}, {view('residual', 'int8_t')}, "
                           f"{view('rng', 'tt_rng')}, NULL}};")
            c.scratch_bytes = 4 * self.khw[0] * self.khw[1] * (self.k if self.op == "conv2d" else 1)
            args = f"{head}, (int8_t *)tt_out, &{wq}, {x}, &{xq}, {gy}, &{u}, (float *)tt_scratch"
        c.ref = f"tt_{self.kind}_s8({args});"
        if variant:
            c.var = f"tt_{self.kind}_s8_{variant}({args});"
        return c


def make(rng, op, what, h, w, cin, cout, k=(1, 1), stride=(1, 1), pad="valid", dil=(1, 1), *, trained=None,
         index=False, saved=False, mode="stochastic", momentum=0.0, weight_decay=0.0, per_channel=True,
         zeros=0.4, zp=None, lr=None, tiny=False, accumulate=0, name="") -> WeightUpdate:
    """cout None: depthwise (cout = cin). trained: k (default all); index: a random sorted
    channel subset; saved: x holds only the k trained channels (x_channels = k)."""
    depthwise = op == "depthwise_conv2d"
    cout = cin if depthwise else cout
    kt = cin if trained is None else trained
    p4 = sc_pad(h, w, k, stride, pad, dil)
    oh = (h + p4[0] + p4[1] - ((k[0] - 1) * dil[0] + 1)) // stride[0] + 1
    ow = (w + p4[2] + p4[3] - ((k[1] - 1) * dil[1] + 1)) // stride[1] + 1
    idx = np.sort(rng.choice(cin, kt, replace=False)).astype(I32) if index else None
    xc = kt if saved else cin
    x = rng.integers(-128, 128, size=(h, w, xc)).astype(I8)
    x.reshape(-1)[:2] = [-128, 127]
    x_zp = int(rng.integers(-128, 128)) if zp is None else zp
    x_scale = float(np.float32(rng.uniform(0.01, 0.05)))
    gy = (rng.standard_normal((oh, ow, cout)) * 1e-2).astype(F32)
    gy[rng.random(gy.shape) < zeros] = 0.0
    if tiny:
        gy = (gy * F32(1e-36)).astype(F32)
    wshape = (k[0], k[1], cin) if depthwise else (cout, k[0], k[1], cin)
    wt = rng.integers(-127, 128, size=wshape).astype(I8)
    scales = (rng.uniform(0.5, 2.0, size=cout if per_channel else 1) * 0.005).astype(F32)
    n = k[0] * k[1] * kt * (1 if depthwise else cout)
    if lr is None:   # steps of a few quantisation steps, fractions everywhere
        lr = 0.3
    m0 = (rng.standard_normal(n) * 0.1).astype(F32) if momentum else None
    shadow0 = (wt.reshape(-1)[:n].astype(F32) + rng.uniform(-0.5, 0.5, n).astype(F32)) if mode == "shadow" else None
    residual0 = rng.integers(-128, 128, size=n).astype(I8) if mode == "residual" else None
    gw0 = ((rng.standard_normal(n) * 1e-3).astype(F32) if accumulate else None)
    label = name or (f"{h}x{w}x{cin}->{'dw' if depthwise else cout} k{k[0]}{k[1]} s{stride[0]} d{dil[0]} "
                     f"k={kt}{' idx' if index else ''}{' saved' if saved else ''} {mode}"
                     f"{' mom' if momentum else ''}{' wd' if weight_decay else ''}{' pt' if not per_channel else ''}"
                     f"{' tiny' if tiny else ''}{' acc' if accumulate else ''} lr={lr:g}")
    return WeightUpdate(op, what, (h, w, cin), (oh, ow, cout), tuple(k), tuple(stride), p4, tuple(dil), kt, idx, xc,
                        x, x_scale, x_zp, gy, wt, scales, mode, lr, momentum, weight_decay, m0, shadow0, residual0,
                        int(rng.integers(0, 2**32)), accumulate, gw0, label)
