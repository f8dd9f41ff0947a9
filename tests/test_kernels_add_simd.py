"""tt_add_s8_mve (firmware/kernels/add/add_s8_mve.c) gives tt_add_s8's bytes under QEMU on
the Cortex-M55 (mps3-an547), and both equal the numpy reference (tinytrain.ops.add.add_s8):
element counts with every tail (1-3 after groups of four), TFLite's parameters from random
scales and zero points (left shift 20, right shifts of every size, multipliers > 0.5 of
the output too), both activation clamps, extreme operands, and hand-made parameters that
reach the saturating and positive-shift corners of MultiplyByQuantizedMultiplier."""
import numpy as np
import pytest

import kernel_harness as kh
from tinytrain.quant import quantize_multiplier
from tinytrain.ops.add import ADD_FIELDS, add_s8

NEEDS_ARM = pytest.mark.skipif(not kh.have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")


def params(rng, act="none"):
    sa, sb, sy = (float(v) for v in rng.uniform(0.005, 0.2, 3))
    za, zb, zy = (int(v) for v in rng.integers(-128, 128, 3))
    twice = 2.0 * max(sa, sb)
    am, ash = quantize_multiplier(sa / twice)
    bm, bsh = quantize_multiplier(sb / twice)
    om, osh = quantize_multiplier(twice / ((1 << 20) * sy))
    lo, hi = (-128, 127) if act == "none" else (max(-128, zy), 127 if act == "relu" else min(127, zy + round(6 / sy)))
    return dict(a_zp=za, b_zp=zb, out_zp=zy, a_mult=am, a_shift=ash, b_mult=bm, b_shift=bsh, out_mult=om,
                out_shift=osh, left_shift=20, act_min=lo, act_max=hi)


def case(rng, n, p, name):
    a = rng.integers(-128, 128, n).astype(np.int8)
    b = rng.integers(-128, 128, n).astype(np.int8)
    a[:2], b[:2] = np.array([-128, 127], np.int8)[:n], np.array([127, -128], np.int8)[:n]
    want = add_s8(a.astype(np.int64), b.astype(np.int64), p).astype(np.int8)
    c = kh.Case(f"add {name} n={n}", out_bytes=n, macs=n, expected=want)
    ac, bc, pn = c.array("a", a), c.array("b", b), c._name("addp")
    c.decls.append(f"static const tt_add_params {pn} = {{{', '.join(str(int(p[k])) for k in ADD_FIELDS)}}};")
    c.ref = f"tt_add_s8({ac}, {bc}, {n}, &{pn}, tt_out);"
    c.var = f"tt_add_s8_mve({ac}, {bc}, {n}, &{pn}, tt_out);"
    return c


def cases():
    rng = np.random.default_rng(11)
    out = []
    for i, n in enumerate((1, 2, 3, 4, 5, 7, 16, 17, 63, 250, 1024)):
        out.append(case(rng, n, params(rng, ("none", "relu", "relu6")[i % 3]), "random"))
    # corners: a positive output shift, a zero right shift, a saturating doubling multiply
    base = params(rng)
    out.append(case(rng, 37, dict(base, out_shift=2, out_mult=1 << 30), "out shift +2"))
    out.append(case(rng, 37, dict(base, a_shift=0, b_shift=0, a_mult=(1 << 31) - 1), "shift 0"))
    out.append(case(rng, 37, dict(base, left_shift=23, a_mult=-(1 << 31), a_shift=-31), "INT32_MIN mult"))
    return out


@NEEDS_ARM
def test_add_mve_bit_exact_under_qemu(tmp_path):
    results = kh.run_cases("mps3-an547", cases(), build_dir=tmp_path)
    bad = [r for r in results if not r.ok or r.identical is not True or r.ref_expected is not True]
    assert not bad, "\n".join(f"{r.name}: identical={r.identical} ref==numpy={r.ref_expected}" for r in bad)
