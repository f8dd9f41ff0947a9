"""The weight-gradient and fused-update variants of conv2d and depthwise_conv2d
(firmware/kernels/<op>/<op>_update_s8_dsp.c, _mve.c) give the reference kernels' floats and
bytes: the updated int8 weights, the momentum buffer, the shadow / residual state and the
PRNG state after the call, or the weight gradient (accumulating or not). In every update
mode (nearest, stochastic with its seeded counter-based draws, residual, shadow, and
"float" on an integer parameter), with momentum and weight decay, per-channel and
per-tensor scales, trained channel counts that are no multiple of 4, 8 or 16 (the vector
tails), trained-channel indices and saved channel copies, 1x1 and general windows (padding,
stride, dilation), more output pixels than one list chunk (64), steps beyond the int32 path
(2^22) and gradients whose products would be subnormal (the Helium variant's guard); for
the depthwise Helium variant (channels in lanes) every lane group and predicated rest, rows
wider than its 32-pixel blocks, 5x5 / 7x7 windows and one beyond its 49 taps, and old
gradient values of -0 and subnormals when accumulating:
  - on the host: the _dsp variants against the reference kernels (ctypes);
  - under QEMU: _dsp on mps2-an386 (Cortex-M4), _mve and _dsp on mps3-an547 (Cortex-M55), in
    one program per board (tests/kernel_harness.py), where the device's reference must also
    equal the host's reference."""
import numpy as np
import pytest

import ckernels as ck
import fc_backward_cases as fcb
import kernel_harness as kh
import update_cases as uc
from kernel_variants import VARIANTS

# the variants these tests check (tests/test_kernel_selection.py: every variant is tested)
NEEDS_ARM = pytest.mark.skipif(not kh.have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")


def cases(seed=0):
    rng = np.random.default_rng(seed)
    C = lambda *a, **k: uc.make(rng, "conv2d", "update", *a, **k)        # noqa: E731
    D = lambda *a, **k: uc.make(rng, "depthwise_conv2d", "update", *a, **k)  # noqa: E731
    out = []
    # 1x1, every mode, trained channel counts reaching each vector tail (16, 8, 4, 1-3)
    for kt in (1, 3, 4, 5, 7, 8, 12, 13, 16, 21, 29, 32):
        out.append(C(4, 4, 32, 6, trained=kt, mode=uc.MODES[kt % len(uc.MODES)]))
    for mode in uc.MODES:
        out.append(C(5, 3, 19, 5, mode=mode))
        out.append(C(4, 4, 24, 3, trained=7, index=True, mode=mode, momentum=0.9, weight_decay=1e-3))
        out.append(C(3, 4, 40, 4, trained=11, index=True, saved=True, mode=mode, per_channel=False))
        out.append(D(5, 5, 13, None, (3, 3), (1, 1), "same", mode=mode))
        out.append(D(6, 6, 24, None, (3, 3), (2, 2), "same", trained=7, index=True, saved=True, mode=mode,
                     momentum=0.9, weight_decay=1e-3))
    out += [
        C(9, 9, 20, 4, mode="stochastic", zeros=0.1),                         # 81 pixels: two chunks
        C(12, 11, 6, 3, (3, 3), (1, 1), "same", mode="nearest"),              # general windows
        C(9, 8, 10, 5, (3, 3), (2, 2), "same", mode="stochastic", momentum=0.5),
        C(9, 9, 5, 2, (3, 3), (1, 1), "same", (2, 2), mode="residual"),
        C(6, 5, 17, 3, (2, 3), (2, 1), "valid", mode="shadow"),
        C(5, 5, 3, 2, (3, 3), (1, 1), (2, 0, 1, 2), mode="stochastic", zp=-128),
        C(4, 4, 16, 4, mode="stochastic", lr=3e5),                            # |step| >= 2^22
        C(4, 4, 16, 4, mode="nearest", lr=3e5),
        C(4, 4, 18, 4, mode="stochastic", tiny=True),                         # subnormal products
        C(4, 4, 16, 4, mode="nearest", zeros=1.0),                            # all gradients zero
        D(9, 9, 8, None, (3, 3), (1, 1), "same", mode="stochastic", zeros=0.1),
        D(7, 7, 5, None, (5, 5), (2, 2), "same", (1, 1), mode="nearest", lr=3e5),
        D(5, 6, 6, None, (3, 2), (1, 2), (2, 0, 1, 1), mode="stochastic", tiny=True),
    ]
    # depthwise, the Helium variant's lanes: trained channel counts reaching every group
    # (16, 16 + a predicated rest, 8, 4, 1-3), every mode; wide rows (column chunks), 5x5 and
    # 7x7 windows (16 / 8 lanes), one beyond 49 taps (the _dsp fallback), dilation, channel
    # indices without a saved copy, per-tensor scales
    for kt, mode in zip((1, 2, 3, 4, 5, 7, 9, 12, 15, 16, 17, 23, 33), uc.MODES * 3):
        out.append(D(4, 5, 36, None, (3, 3), (1, 1), "same", trained=kt, index=kt % 2 == 1, mode=mode))
    out += [
        D(3, 70, 10, None, (3, 3), (1, 1), "same", mode="stochastic"),           # 70 columns
        D(3, 40, 19, None, (3, 3), (2, 2), "same", trained=19, mode="nearest", momentum=0.9),
        D(7, 7, 21, None, (5, 5), (1, 1), "same", mode="stochastic", weight_decay=1e-3),
        D(9, 9, 11, None, (7, 7), (1, 1), "same", mode="residual"),
        D(9, 10, 6, None, (8, 7), (1, 1), "same", mode="stochastic"),           # 56 taps
        D(9, 9, 9, None, (3, 3), (1, 1), "same", (2, 2), mode="shadow", per_channel=False),
        D(8, 7, 14, None, (3, 3), (2, 1), (0, 2, 2, 1), mode="float", zp=127),
        D(6, 6, 18, None, (3, 3), (1, 1), "same", mode="nearest", zeros=1.0),
        D(6, 6, 18, None, (3, 3), (1, 1), "same", mode="nearest", lr=3e5),
    ]
    G = lambda op, *a, **k: uc.make(rng, op, "grad", *a, **k)             # noqa: E731
    out += [
        G("conv2d", 4, 4, 32, 5, trained=21),
        G("conv2d", 9, 9, 12, 3, trained=7, index=True, accumulate=1),
        G("conv2d", 7, 7, 6, 3, (3, 3), (2, 2), "same", accumulate=1),
        G("conv2d", 4, 4, 18, 4, tiny=True, accumulate=1),
        G("conv2d", 4, 4, 9, 2, tiny=True),
        G("depthwise_conv2d", 6, 6, 11, None, (3, 3), (1, 1), "same"),
        G("depthwise_conv2d", 6, 6, 12, None, (3, 3), (2, 2), "same", trained=5, index=True, saved=True,
          accumulate=1),
        G("depthwise_conv2d", 5, 5, 37, None, (3, 3), (1, 1), "same", trained=37, accumulate=1),
        G("depthwise_conv2d", 4, 50, 7, None, (3, 3), (1, 1), "same", index=True),
        G("depthwise_conv2d", 5, 5, 20, None, (5, 5), (2, 2), "same", tiny=True),
        G("depthwise_conv2d", 5, 5, 20, None, (3, 3), (1, 1), "same", tiny=True, accumulate=1),
    ]
    # accumulating into old values of -0 (kept by the reference, which skips zero d) and
    # subnormal ones (Helium would flush them): the Helium variant hands these to _dsp
    neg, sub = (G("depthwise_conv2d", 5, 5, 13, None, (3, 3), (1, 1), "same", accumulate=1, name=f"dw acc {n}")
                for n in ("-0", "subnormal"))
    neg.gw0[::3] = -0.0
    sub.gw0[::5] = np.float32(2e-39)
    # a subnormal product only in the last rows: the Helium variant's first blocks in
    # vectors, the rest in scalar
    late = [uc.make(rng, "depthwise_conv2d", what, 9, 9, 18, None, (3, 3), (1, 1), "same", mode="stochastic",
                    name=f"dw {what}, subnormal d late") for what in ("update", "grad")]
    for c in late:
        c.gy[7:] = (c.gy[7:] * np.float32(1e-36)).astype(np.float32)
    # the depthwise Helium rule's range checks (tt_update_mve.h): scales from 2^-45 to 2^45 (a group with one
    # beyond 2^+-40 takes the scalar rule), gradients far below them, old momentum of -0,
    # subnormal and beyond 2^60; an lr below 2^-20 (every group scalar)
    edges = [uc.make(rng, "depthwise_conv2d", "update", 6, 6, 36, None, (3, 3), (1, 1), "same", mode=mode,
                     momentum=0.9, weight_decay=1e-3, name=f"dw rule edges {mode}") for mode in ("stochastic", "nearest")]
    for c in edges:
        c.scales[:] = (2.0 ** np.linspace(-45, 45, 36)).astype(np.float32)
        c.scales[16:32] = (2.0 ** np.linspace(-30, 30, 16)).astype(np.float32)   # a group within range
        c.gy[2] = (c.gy[2] * np.float32(1e-25)).astype(np.float32)
        c.m0[::3], c.m0[1::7], c.m0[2::11] = -0.0, np.float32(3e-39), np.float32(1e25)
    # the conv2d Helium update's rule, the same checks: per output channel scales from 2^-45
    # to 2^45, momentum edges
    for mode in ("stochastic", "nearest"):
        c = uc.make(rng, "conv2d", "update", 4, 4, 22, 8, mode=mode, momentum=0.9, weight_decay=1e-3,
                    name=f"conv rule edges {mode}")
        c.scales[:] = (2.0 ** np.array([-45, -39, -20, 0, 12, 30, 39, 45])).astype(np.float32)
        c.m0[::3], c.m0[1::7], c.m0[2::11] = -0.0, np.float32(3e-39), np.float32(1e25)
        edges.append(c)
    edges.append(uc.make(rng, "depthwise_conv2d", "update", 5, 5, 9, None, (3, 3), (1, 1), "same",
                         mode="stochastic", lr=1e-7, name="dw lr 1e-7"))
    edges[-1].gy *= np.float32(1e6)           # steps as large as the others'
    return out + [neg, sub] + late + edges


def fc_edge_cases(seed=0):
    """Fully connected QAS updates whose floats straddle the _mve variant's range checks."""
    rng = np.random.default_rng(seed)
    out = []
    for mode in ("stochastic", "nearest", "residual", "shadow"):
        # d = gy * x_scale from 2^0 down to 2^-150 (rows of 1, 3, 5 or 7 weights: the tails),
        # scales up to 2^38: rows on both sides of |d| >= 2^-70 and |d| / s >= 2^-70
        c = fcb.update_case(rng, 7, 40, mode=mode, momentum=0.9, weight_decay=1e-3, lr=0.5)
        c.gy[:] = (2.0 ** -np.arange(0, 160, 4)).astype(np.float32) * np.where(np.arange(40) % 2, -1, 1)
        c.scales[:] = (2.0 ** np.linspace(-38, 38, 40)).astype(np.float32)
        c.x[0] = c.x_zp                               # a zero product: +-0 / s keeps its sign
        c.gy[5] = -0.0
        c.momentum.reshape(-1)[::3] = -0.0
        c.momentum.reshape(-1)[1::7] = np.float32(3e-39)      # subnormal old momentum
        c.momentum.reshape(-1)[2::11] = np.float32(1e25)      # beyond 2^60
        if mode == "shadow":     # shadow values weight decay reads: -0, tiny, subnormal
            c.shadow.reshape(-1)[::5], c.shadow.reshape(-1)[1::9] = -0.0, np.float32(1e-30)
            c.shadow.reshape(-1)[2::13] = np.float32(5e-40)
        c.name += " edges"
        out.append(c)
    for mode in ("residual", "shadow"):      # state modes without momentum, steps of every size
        c = fcb.update_case(rng, 13, 24, mode=mode, weight_decay=1e-3, lr=0.5)
        c.gy[:] = (2.0 ** -np.arange(-40, 120, 160 / 24)).astype(np.float32)
        c.name += " step sizes"
        out.append(c)
    for mode in ("stochastic", "nearest"):     # steps beyond 2^20: the row's bound on |step|
        out.append(fcb.update_case(rng, 30, 8, mode=mode, huge=True, weight_decay=1e-3))
    for hp in ((1e-7, 0.0, 0.0), (0.5, 1e-7, 0.0), (0.5, 0.0, 1e-13), (0.0, 0.9, 0.0), (0.5, 0.0, 0.0)):
        c = fcb.update_case(rng, 13, 6, mode="stochastic", momentum=hp[1], weight_decay=hp[2], lr=hp[0])
        c.hp = hp
        c.name += f" hp={hp}"
        out.append(c)
    return out


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="*.c", build_dir=tmp_path_factory.mktemp("ck_update"))


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.int32) if a.dtype == np.float32 else a


@pytest.mark.parametrize("i", range(len(cases())))
def test_update_dsp_host(lib, i):
    c = cases()[i]
    want, got = c.run_host(lib, None), c.run_host(lib, "dsp")
    if c.what == "update":   # not degenerate: the call changed weights (unless nothing to learn)
        assert (want["w"] != c.w.astype(np.int8).reshape(want["w"].shape)).any() or not np.abs(c.gy).max() > 1e-20
    for name in want:
        np.testing.assert_array_equal(bits(got[name]), bits(want[name]), err_msg=f"{c.name}: {name}")


@NEEDS_ARM
@pytest.mark.parametrize("board,variants", [("mps2-an386", ("dsp",)), ("mps3-an547", ("mve", "dsp"))])
def test_update_variants_bit_exact_under_qemu(board, variants, lib, tmp_path):
    qc = []
    for v in variants:
        for c in cases(seed=1):
            if v not in VARIANTS[f"{c.op}_{c.what}_weight"]:
                continue          # no Helium variant: the Cortex-M55 runs the _dsp one
            qc.append(c.case(v, expected=c.run_host(lib, None)))
    results = kh.run_cases(board, qc, build_dir=tmp_path)
    bad = [r for r in results if not r.ok or r.identical is not True or r.ref_expected is not True]
    assert not bad, "\n".join(f"{r.name}: identical={r.identical} ref==host={r.ref_expected} "
                              f"guards={r.guards_ok}" for r in bad)


@NEEDS_ARM
def test_fc_update_mve_on_its_range_edges(lib, tmp_path):
    """The Helium fully connected update equals the reference (and the _dsp variant) where its
    range checks decide between vectors and the scalar way."""
    cases = fc_edge_cases()
    qc = [c.case(v, expected=c.run_host(lib, None)) for v in ("mve", "dsp") for c in cases]
    for c in cases:    # the call changes weights
        assert not np.array_equal(c.run_host(lib, None).view(np.int8), c.before()), c.name
    results = kh.run_cases("mps3-an547", qc, build_dir=tmp_path)
    bad = [r for r in results if not r.ok or r.identical is not True or r.ref_expected is not True]
    assert not bad, "\n".join(f"{r.name}: identical={r.identical} ref==host={r.ref_expected}" for r in bad)
