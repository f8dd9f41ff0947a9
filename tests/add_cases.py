"""Cases of tt_add_s8 and its Helium variant tt_add_s8_mve for the kernel harness: element
counts with every tail (1-3 after groups of four), TFLite's parameters from random scales and
zero points, both activation clamps, extreme operands, and hand-made parameters that reach the
saturating and positive-shift corners of MultiplyByQuantizedMultiplier. Used by
tests/test_kernels_add_simd.py and bench/bench_kernels.py."""
import numpy as np

import kernel_harness as kh
from tinytrain.quant import quantize_multiplier
from tinytrain.ops.add import ADD_FIELDS, add_s8


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
