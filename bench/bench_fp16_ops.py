"""Instructions of the FP16 elementwise, pooling, mean, softmax, shape-op and activation
kernels on mps3-an547 (QEMU -icount, the kernel harness): the portable _f16 kernel against its
float32 twin, and the Helium variants (add, mul, maximum, minimum, leaky relu, prelu: the same
bits; the mean, the bias update: the same bits in float32 lanes; transposed convolution, hard
swish: their own models) against the portable one. Every
output is checked against its numpy model (tinytrain/ops/f16.py, the op units) before it is counted.

    python bench/bench_fp16_ops.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tinytrain.report import format_table  # noqa: E402

BOARD = "mps3-an547"


def _float(case, what, a):
    return f"(const float *){case.array(what, np.asarray(a, np.float32).view(np.uint32))}"


def cases():
    """(label, f16 case, f32 case or None)."""
    import f16_cases as fc
    from kernel_harness import Case
    from tinytrain.resources import firmware_dir  # noqa: F401
    out = []
    shape = (1, 16, 16, 32)
    n = int(np.prod(shape))
    add = fc.add_cases(shape, act="relu", seed=1)
    c32 = Case("add f32", out_bytes=4 * n, macs=n)
    a = np.ones(n, np.float32)
    c32.ref = f"tt_add_f32({_float(c32, 'a', a)}, {_float(c32, 'b', a)}, {n}, 1, (float *)tt_out);"
    out.append(("add 16x16x32 (relu)", add[0], c32))
    out.append(("gradient sum 16x16x32", add[1], None))
    bc = fc.add_cases(shape, (32,), seed=2, act="none")
    out.append(("add + per-channel constant, grad of the constant", bc[1], None))
    pool = fc.pool_cases(16, 16, 32, k=3, stride=1, pad=1, seed=3)
    out.append(("avg pool 3x3 s1 16x16x32 forward", pool[0], None))
    out.append(("avg pool 3x3 s1 grad input", pool[1], None))
    out.append(("mean 16x16x32 forward", pool[2], None))
    out.append(("mean 16x16x32 grad input", pool[3], None))
    sm = fc.softmax_cases(16, 32, seed=4)
    out.append(("softmax 16x32 forward", sm[0], None))
    out.append(("softmax 16x32 grad input", sm[1], None))
    import f16_cases_shape
    out += f16_cases_shape.bench_rows()        # the shape ops, beside their float32 twins
    import f16_cases_binary
    out += f16_cases_binary.bench_rows()
    import f16_cases_sum
    out += f16_cases_sum.bench_rows()
    return out


ACT_N = 4096            # elements of an activation row (16x16x16)


def _f32_case(label, n, call, args_of, bcast=None) -> "Case":
    """A float32 twin of an activation kernel on n elements (its output is not checked: the
    float32 kernels have their own tests); bcast: the shapes (x, alpha) of a {bc} argument."""
    from f16_cases import _bcast_decl
    from kernel_harness import Case
    from tinytrain.ops.elementwise import bcast_fields
    c = Case(f"{label} f32", out_bytes=4 * n, macs=n)
    c.decls.append('#include "tt_train_kernels.h"')
    rng = np.random.default_rng(n)
    arrays = {k: _float(c, k, 2 * rng.standard_normal(size)) for k, size in args_of.items()}
    if bcast is not None:
        arrays["bc"] = _bcast_decl(c, bcast_fields(bcast[0], bcast[1], bcast[0]))
    c.ref = call.format(**arrays, out="(float *)tt_out")
    return c


def act_cases():
    """(label, f16 case, f32 case or None, Helium case or None): the activations, 16x16x16 (prelu
    with one alpha a channel), forward and input gradient (stored)."""
    import f16_cases_act as fa
    n = ACT_N
    out = []
    lr = fa.leaky_relu_cases(n, 0.2, seed=21)
    out.append(("leaky relu 16x16x16 forward", lr[0], _f32_case(
        "leaky relu", n, "tt_leaky_relu_f32({x}, %d, 0.2f, {out});" % n, {"x": n}), None))
    out.append(("leaky relu grad input", lr[1], _f32_case(
        "leaky relu grad", n, "tt_leaky_relu_grad_input_f32(%d, {x}, 0.2f, {gy}, 0, {out});" % n,
        {"x": n, "gy": n}), None))
    pr = fa.prelu_cases((1, 16, 16, 16), (16,), seed=22)
    shapes = ((1, 16, 16, 16), (16,))
    out.append(("prelu 16x16x16, alpha per channel, forward", pr[0], _f32_case(
        "prelu", n, "tt_prelu_bcast_f32({x}, {alpha}, {bc}, {out});", {"x": n, "alpha": 16}, shapes), None))
    out.append(("prelu grad input", pr[1], _f32_case(
        "prelu grad", n, "tt_prelu_grad_input_f32({bc}, {x}, {alpha}, {gy}, 0, {out});",
        {"x": n, "alpha": 16, "gy": n}, shapes), None))
    hs = fa.hard_swish_cases(n, seed=23)       # portable: fwd, grad acc 0, acc 1; then Helium's
    out.append(("hard swish 16x16x16 forward", hs[0], _f32_case(
        "hard swish", n, "tt_hard_swish_f32({x}, %d, {out});" % n, {"x": n}), hs[3]))
    out.append(("hard swish grad input", hs[1], _f32_case(
        "hard swish grad", n, "tt_hard_swish_grad_input_f32(%d, {x}, {gy}, 0, {out});" % n,
        {"x": n, "gy": n}), hs[4]))
    for kind in ("logistic", "tanh"):
        lc = fa.lut_cases(kind, n, seed=24)
        out.append((f"{kind} 16x16x16 forward", lc[0], _f32_case(
            kind, n, "tt_%s_f32({x}, %d, {out});" % (kind, n), {"x": n}), None))
        out.append((f"{kind} grad input", lc[1], _f32_case(
            f"{kind} grad", n, "tt_%s_grad_input_f32(%d, {y}, {gy}, 0, {out});" % (kind, n),
            {"y": n, "gy": n}), None))
    return out


def _act_kernels():
    from tinytrain.resources import firmware_dir
    k = firmware_dir() / "kernels"
    return [k / "leaky_relu" / "leaky_relu_f32.c", k / "leaky_relu" / "leaky_relu_backward.c",
            k / "prelu" / "prelu_f32.c", k / "prelu" / "prelu_backward.c",
            k / "hard_swish" / "hard_swish_f32.c", k / "hard_swish" / "hard_swish_backward.c",
            k / "logistic" / "logistic_f32.c", k / "logistic" / "logistic_backward.c",
            k / "tanh" / "tanh_f32.c", k / "tanh" / "tanh_backward.c"]


def main(argv=None) -> int:
    import f16_cases as fc
    from kernel_harness import run_cases
    from tinytrain.resources import firmware_dir
    import f16_cases_binary
    import f16_cases_shape
    first = [(label, c16, c32, mve[0] if mve else None) for label, c16, c32, *mve in cases()]
    batches = [(first, [firmware_dir() / "kernels" / f for f in ("add/add_f32.c", "train/bias_update_f32.c",
                                                                  *f16_cases_binary.F32_KERNELS)]
                + f16_cases_shape.f32_kernels()),
               (act_cases(), _act_kernels())]          # two programs: their arrays fill the flash
    table = []
    for rows, extra in batches:
        flat = [c for _, c16, c32, cmve in rows for c in [c16] + [x for x in (c32, cmve) if x]]
        with tempfile.TemporaryDirectory(prefix="bench-fp16-ops-") as tmp:
            res = {r.name: r for r in run_cases(BOARD, flat, tmp, kernels=fc.kernels() + extra)}
        for label, c16, c32, cmve in rows:
            r = res[c16.name]
            assert r.ref_expected and r.identical is not False, label
            f32 = res[c32.name].ref_instr if c32 else None
            if cmve is not None:              # a Helium variant with its own model: its own case
                assert res[cmve.name].ref_expected, cmve.name
                helium = res[cmve.name].ref_instr
            else:
                helium = r.var_instr
            table.append([label, f"{f32:,}" if f32 else "", f"{r.ref_instr:,}",
                          f"{helium:,}" if helium else "",
                          f"{r.ref_instr / helium:.2f}x" if helium else "",
                          f"{f32 / helium:.2f}x" if helium and f32 else ""])
    print(f"FP16 kernels on {BOARD}, instructions per call (outputs checked against the numpy model)")
    print(format_table(["kernel", "FP32 portable", "FP16 portable", "FP16 Helium", "Helium vs portable",
                        "Helium vs FP32"], table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
