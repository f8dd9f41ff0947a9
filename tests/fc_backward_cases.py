"""Cases for the fully connected backward variants of int8 graphs
(firmware/kernels/fully_connected/fully_connected_backward_s8_dsp.c / _mve.c): the input
gradient, the weight gradient and the fused QAS weight update in every update mode. Each
runs on the host (ctypes) and in the bare-metal harness (kernel_harness.Case). There is no
numpy expectation: the reference kernel's floats and bytes are the contract (its order of
float operations, its PRNG draws), so the host build of the reference is the expectation.
Shared by tests/test_kernels_simd.py and bench/bench_kernels.py.

MACs: in * out for the gradients, k * out (one product per trained weight) for the update.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

import ckernels as ck
import kernel_harness as kh

I8, I32, F32 = np.int8, np.int32, np.float32


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _host_fn(lib, kind: str, variant):
    """The reference kernel tt_<kind>_s8, or its variant."""
    return getattr(lib, f"tt_{kind}_s8" + (f"_{variant}" if variant else ""))


def _float_case(kind: str, name: str, variant, expected, macs: int, initial: np.ndarray, args) -> kh.Case:
    """A harness case whose kernel writes floats into tt_out, starting from `initial`;
    args(c) gives the call's arguments (the output last: (float *)tt_out)."""
    c = kh.Case(f"{kind} {name}", out_bytes=int(initial.size) * 4, macs=macs, expected=expected)
    init = c.array("init", np.ascontiguousarray(initial, F32))
    c.pre = f"memcpy(tt_out, {init}, {initial.size * 4});"
    a = args(c)
    c.ref = f"tt_{kind}_s8({a});"
    if variant:
        c.var = f"tt_{kind}_s8_{variant}({a});"
    return c


@dataclass
class FcGradInput:
    w: np.ndarray           # (out, in) int8
    scales: np.ndarray      # float32, out or 1
    gy: np.ndarray          # (out,) float32
    gx0: np.ndarray         # (in,) float32, the destination before the call
    accumulate: int
    name: str = ""
    kind = "fully_connected_grad_input"

    @property
    def macs(self):
        return int(self.w.size)

    def before(self) -> np.ndarray:
        """The bytes the kernel writes, before the call."""
        return self.gx0.view(I8)

    def run_host(self, lib, variant):
        gy, w, gx = ck.carray(self.gy, F32), ck.carray(self.w, I8), ck.carray(self.gx0, F32).copy()
        _host_fn(lib, self.kind, variant)(self.w.shape[1], self.w.shape[0], ck.ptr(gy), ck.ptr(w),
                                          ck.weight_quant(self.scales, int(self.scales.size > 1)), self.accumulate,
                                          ck.ptr(gx))
        return gx

    def case(self, variant, expected=None):
        def args(c):
            gy, w = c.array("gy", self.gy.astype(F32)), c.array("w", self.w.astype(I8))
            scales, wq = c.array("scale", self.scales.astype(F32)), c._name("wq")
            c.decls.append(f"static const tt_weight_quant {wq} = {{{scales}, {int(self.scales.size > 1)}}};")
            return f"{self.w.shape[1]}, {self.w.shape[0]}, {gy}, {w}, &{wq}, {self.accumulate}, (float *)tt_out"
        return _float_case(self.kind, self.name, variant, expected, self.macs, self.gx0, args)


@dataclass
class FcGradWeight:
    x: np.ndarray           # (x_channels,) int8
    x_scale: float
    x_zp: int
    gy: np.ndarray          # (out,) float32
    k: int
    gw0: np.ndarray         # (out, k) float32
    accumulate: int
    name: str = ""
    kind = "fully_connected_grad_weight"

    @property
    def macs(self):
        return int(self.gw0.size)

    def before(self) -> np.ndarray:
        return self.gw0.reshape(-1).view(I8)

    def run_host(self, lib, variant):
        x, gy, gw = ck.carray(self.x, I8), ck.carray(self.gy, F32), ck.carray(self.gw0, F32).copy()
        _host_fn(lib, self.kind, variant)(self.gy.size, ck.channels(self.x.size, self.k), ck.ptr(x),
                                          ck.act_quant(self.x_scale, self.x_zp), ck.ptr(gy), self.accumulate,
                                          ck.ptr(gw))
        return gw

    def case(self, variant, expected=None):
        def args(c):
            x, gy = c.array("x", self.x.astype(I8)), c.array("gy", self.gy.astype(F32))
            ch, aq = c._name("ch"), c._name("aq")
            c.decls.append(f"static const tt_channels {ch} = {{{self.x.size}, {self.k}, NULL, {self.x.size}}};")
            c.decls.append(f"static const tt_act_quant {aq} = {{{float(F32(self.x_scale)).hex()}f, {self.x_zp}}};")
            return f"{self.gy.size}, &{ch}, {x}, &{aq}, {gy}, {self.accumulate}, (float *)tt_out"
        return _float_case(self.kind, self.name, variant, expected, self.macs, self.gw0, args)


@dataclass
class FcUpdate:
    """tt_fully_connected_update_weight_s8 on (out, in_channels) weights, k trained channels
    (index or the first k), with the state of its mode. The result is every byte the kernel
    writes, packed: weights | momentum | shadow | residual | the PRNG state."""
    w: np.ndarray           # (out, in_channels) int8
    scales: np.ndarray      # float32, out or 1
    x: np.ndarray           # (x_channels,) int8: in_channels, or k (a copy of the trained ones)
    x_scale: float
    x_zp: int
    gy: np.ndarray          # (out,) float32
    k: int
    index: np.ndarray | None
    mode: str               # nearest, stochastic, residual, shadow
    hp: tuple               # lr, momentum, weight_decay
    momentum: np.ndarray | None   # (out, k) float32 or None
    shadow: np.ndarray | None
    residual: np.ndarray | None
    rng_state: int
    name: str = ""
    kind = "fully_connected_update_weight"

    @property
    def macs(self):
        return int(self.gy.size * self.k)

    def layout(self):
        """(offset of each part in the packed bytes, total)."""
        n = self.gy.size * self.k
        parts = [("w", _pad4(self.w.size)), ("momentum", 4 * n if self.momentum is not None else 0),
                 ("shadow", 4 * n if self.shadow is not None else 0),
                 ("residual", _pad4(n) if self.residual is not None else 0), ("rng", 4)]
        off, at = {}, 0
        for name, size in parts:
            off[name] = at
            at += size
        return off, at

    def before(self) -> np.ndarray:
        return self.packed_initial().view(I8)

    def packed_initial(self) -> np.ndarray:
        off, total = self.layout()
        buf = np.zeros(total, np.uint8)
        buf[:self.w.size] = self.w.reshape(-1).view(np.uint8)
        for name in ("momentum", "shadow", "residual"):
            a = getattr(self, name)
            if a is not None:
                raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
                buf[off[name]:off[name] + raw.size] = raw
        buf[off["rng"]:off["rng"] + 4] = np.array([self.rng_state], np.uint32).view(np.uint8)
        return buf

    def run_host(self, lib, variant) -> np.ndarray:
        fn = _host_fn(lib, self.kind, variant)
        w = ck.carray(self.w, I8).copy()
        state = {n: (None if getattr(self, n) is None else ck.carray(getattr(self, n), d).copy())
                 for n, d in (("momentum", F32), ("shadow", F32), ("residual", I8))}
        rng = ck.TtRng(self.rng_state)
        u = ck.update(*self.hp, mode=self.mode, m=state["momentum"], shadow=state["shadow"],
                      residual=state["residual"], rng=rng)
        x, gy = ck.carray(self.x, I8), ck.carray(self.gy, F32)
        fn(self.gy.size, ck.channels(self.w.shape[1], self.k, self.index, self.x.size), ck.ptr(w),
           ck.weight_quant(self.scales, int(self.scales.size > 1)), ck.ptr(x), ck.act_quant(self.x_scale, self.x_zp),
           ck.ptr(gy), u)
        out = FcUpdate(**{**self.__dict__, "w": w, **state, "rng_state": rng.state})
        return out.packed_initial().view(I8)

    def case(self, variant, expected=None):
        off, total = self.layout()
        c = kh.Case(f"{self.kind} {self.name}", out_bytes=total, macs=self.macs, expected=expected)
        init = c.array("init", self.packed_initial())
        x, gy = c.array("x", self.x.astype(I8)), c.array("gy", self.gy.astype(F32))
        scales = c.array("scale", self.scales.astype(F32))
        idx = c.array("index", self.index.astype(I32)) if self.index is not None else "NULL"
        ch, aq, wq = c._name("ch"), c._name("aq"), c._name("wq")
        c.decls.append(f"static const tt_channels {ch} = {{{self.w.shape[1]}, {self.k}, {idx}, {self.x.size}}};")
        c.decls.append(f"static const tt_act_quant {aq} = {{{float(F32(self.x_scale)).hex()}f, {self.x_zp}}};")
        c.decls.append(f"static const tt_weight_quant {wq} = {{{scales}, {int(self.scales.size > 1)}}};")
        c.pre = f"memcpy(tt_out, {init}, {total});"
        ptr = lambda name, ctype: (f"({ctype} *)(tt_out + {off[name]})"  # noqa: E731
                                   if getattr(self, name) is not None else "NULL")
        lr, mom, wd = (float(F32(v)).hex() + "f" for v in self.hp)
        code = ck.UPDATE_CODES[self.mode]

        def call(fn):
            return (f"{{ const tt_hparams hp = {{{lr}, {mom}, {wd}}}; "
                    f"const tt_update u = {{&hp, {code}, {ptr('momentum', 'float')}, {ptr('shadow', 'float')}, "
                    f"{ptr('residual', 'int8_t')}, (tt_rng *)(tt_out + {off['rng']}), NULL}}; "
                    f"{fn}({self.gy.size}, &{ch}, tt_out, &{wq}, {x}, &{aq}, {gy}, &u); }}")
        c.ref = call(f"tt_{self.kind}_s8")
        if variant:
            c.var = call(f"tt_{self.kind}_s8_{variant}")
        return c


# --- random cases ------------------------------------------------------------------------------

def _extremes(a, values):
    """The first elements of `a` set to `values` (as many as fit)."""
    flat = a.reshape(-1)
    n = min(flat.size, len(values))
    flat[:n] = values[:n]


def grad_input_case(rng, n_in, n_out, *, per_channel=True, accumulate=0, zeros=0.3, tiny=False,
                    name="") -> FcGradInput:
    """Gradients with a fraction `zeros` of zeros (a ReLU mask), both weight extremes; tiny:
    denormal products and sums (the _mve variant's fallback)."""
    w = rng.integers(-128, 128, size=(n_out, n_in)).astype(I8)
    _extremes(w, [-128, 127])
    scales = (rng.uniform(0.5, 2.0, size=n_out if per_channel else 1) * 0.01).astype(F32)
    gy = (rng.standard_normal(n_out) * 1e-3).astype(F32)
    gy[rng.random(n_out) < zeros] = 0.0
    if tiny:
        gy, scales = (gy * F32(1e-33)).astype(F32), (scales * F32(1e-3)).astype(F32)
    gx0 = ((rng.standard_normal(n_in) * 1e-3).astype(F32) if accumulate else np.full(n_in, 7.0, F32))
    if accumulate and tiny:
        gx0[::7] = F32(1e-40)
    return FcGradInput(w, scales, gy, gx0, accumulate, name or f"{n_in}->{n_out} {'pc' if per_channel else 'pt'}"
                       f"{' acc' if accumulate else ''}{' tiny' if tiny else ''}")


def grad_weight_case(rng, n_in, n_out, k=None, *, accumulate=0, tiny=None, special=False, name="") -> FcGradWeight:
    """tiny: "d" makes some rows' d denormal, "old" puts denormals among the old values
    (accumulating); special: an infinity and a NaN among the gradients."""
    k = n_in if k is None else k
    x = rng.integers(-128, 128, size=n_in).astype(I8)
    _extremes(x, [-128, 127])
    zp = int(rng.integers(-128, 128))
    gy = (rng.standard_normal(n_out) * 1e-3).astype(F32)
    gy[rng.random(n_out) < 0.3] = 0.0
    gy[0] = -0.0
    if tiny == "d":
        gy[1::3] = (gy[1::3] * F32(1e-36)).astype(F32)
    if special:
        gy[-1], gy[n_out // 2] = np.inf, np.nan
    gw0 = ((rng.standard_normal((n_out, k)) * 1e-3).astype(F32) if accumulate else np.full((n_out, k), 5.0, F32))
    if accumulate and tiny == "old":
        gw0.reshape(-1)[::11] = F32(3e-39)
    return FcGradWeight(x, float(rng.uniform(0.005, 0.05)), zp, gy, k, gw0, accumulate,
                        name or f"{n_in}->{n_out} k{k}{' acc' if accumulate else ''}{f' tiny-{tiny}' if tiny else ''}"
                             f"{' inf/nan' if special else ''}")


def update_case(rng, n_in, n_out, *, mode="stochastic", k=None, sparse=False, copy=False, momentum=0.0,
                weight_decay=0.0, lr=0.5, per_channel=True, halves=False, huge=False, special=False,
                name="") -> FcUpdate:
    """A QAS weight update. sparse: k of the inputs by an index (copy: x holds just the k);
    halves: steps that are exact multiples of 1/4 (the rounding ties); huge: steps beyond
    2^20 (the fast rounding's fallback) and saturating ones; special: inf and NaN gradients."""
    k = n_in if k is None else k
    index = np.sort(rng.choice(n_in, size=k, replace=False)).astype(I32) if sparse else None
    w = rng.integers(-127, 128, size=(n_out, n_in)).astype(I8)
    _extremes(w, [-127, 127, 0])
    zp = int(rng.integers(-128, 128))
    x_full = rng.integers(-128, 128, size=n_in).astype(I8)
    x = x_full[index] if (sparse and copy) else x_full
    scales = (rng.uniform(0.5, 2.0, size=n_out if per_channel else 1) * 0.01).astype(F32)
    gy = (rng.standard_normal(n_out) * 0.02).astype(F32)
    gy[rng.random(n_out) < 0.2] = 0.0
    x_scale = float(rng.uniform(0.01, 0.05))
    if halves:       # step = lr * gy * x_scale * (x - zp) / scale: quarters with these values
        scales[:], x_scale, lr = 1.0, (2.0 ** -9 if mode == "residual" else 0.25), 1.0   # residual: 256 step
        gy = rng.integers(-2, 3, size=n_out).astype(F32)
        x, zp = (x.astype(np.int32) // 16).astype(I8), int(rng.integers(-3, 4))
    if huge:
        gy[::2] = (gy[::2] * F32(1e12)).astype(F32)
        gy[1::4] = (gy[1::4] * F32(1e5)).astype(F32)
    if special:
        gy[0], gy[-1] = np.inf, np.nan
    n = n_out * k
    mom = (rng.standard_normal(n) * 0.01).astype(F32).reshape(n_out, k) if momentum else None
    shadow = (w[:, index] if sparse else w[:, :k]).astype(F32) + rng.uniform(-0.5, 0.5, (n_out, k)).astype(F32) \
        if mode == "shadow" else None
    if shadow is not None and halves:     # on the quarter grid too: ties in roundf
        shadow = (np.round(shadow) + rng.integers(-2, 3, size=shadow.shape) * 0.25).astype(F32)
    residual = rng.integers(-128, 128, size=(n_out, k)).astype(I8) if mode == "residual" else None
    label = name or (f"{n_in}->{n_out} k{k}{' idx' if sparse else ''}{' copy' if copy else ''} {mode}"
                     f"{' mom' if momentum else ''}{' wd' if weight_decay else ''}{' pt' if not per_channel else ''}"
                     f"{' halves' if halves else ''}{' huge' if huge else ''}{' inf/nan' if special else ''}")
    return FcUpdate(w, scales, x, x_scale, zp, gy, k, index, mode, (lr, momentum, weight_decay), mom, shadow,
                    residual, int(rng.integers(0, 1 << 32)), label)


def fc_backward_cases(seed=0) -> list:
    """Every branch of the variants: inputs % 4 / % 8 / % 16 and beyond one TT_FC_CHUNK (64),
    more than 64 outputs (the input gradient's chunks), accumulate, per-tensor scales,
    denormals (the _mve fallbacks), infinities and NaNs, every update mode with momentum,
    weight decay, sparse channels (index, copy), rounding ties and huge steps."""
    rng = np.random.default_rng(seed)
    GI = lambda *a, **k: grad_input_case(rng, *a, **k)  # noqa: E731
    GW = lambda *a, **k: grad_weight_case(rng, *a, **k)  # noqa: E731
    U = lambda *a, **k: update_case(rng, *a, **k)  # noqa: E731
    return [GI(64, 10), GI(37, 5), GI(13, 70, zeros=0.5), GI(150, 3, accumulate=1), GI(8, 8, per_channel=False),
            GI(1, 1, zeros=0.0), GI(45, 12, tiny=True), GI(21, 9, accumulate=1, tiny=True), GI(16, 4, zeros=1.0),
            GW(64, 10), GW(37, 6, accumulate=1), GW(150, 3), GW(1, 1), GW(70, 5, 23, accumulate=1),
            GW(29, 7, tiny="d"), GW(33, 6, accumulate=1, tiny="old"), GW(19, 8, accumulate=1, tiny="d"),
            GW(12, 6, special=True), GW(12, 6, accumulate=1, special=True),
            U(64, 10, mode="nearest"), U(37, 5, mode="stochastic"), U(150, 3, mode="residual", momentum=0.9),
            U(21, 6, mode="shadow", weight_decay=0.01), U(70, 4, mode="stochastic", momentum=0.9, weight_decay=0.02),
            U(40, 7, mode="nearest", k=13, sparse=True), U(40, 7, mode="stochastic", k=29, sparse=True, copy=True),
            U(90, 3, mode="residual", k=70, sparse=True), U(33, 5, mode="shadow", k=33, sparse=True, copy=True),
            U(48, 9, mode="nearest", halves=True), U(48, 9, mode="residual", halves=True),
            U(48, 9, mode="shadow", halves=True), U(48, 9, mode="stochastic", halves=True),
            U(30, 8, mode="nearest", huge=True), U(30, 8, mode="residual", huge=True, momentum=0.5),
            U(30, 8, mode="shadow", huge=True), U(30, 8, mode="stochastic", huge=True),
            U(10, 4, mode="nearest", special=True), U(10, 4, mode="residual", special=True),
            U(10, 4, mode="shadow", special=True), U(10, 4, mode="stochastic", special=True, per_channel=False),
            U(1, 1, mode="stochastic")]
