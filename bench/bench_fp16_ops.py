"""Instructions of the FP16 elementwise, pooling, mean, softmax and shape-op kernels on mps3-an547 (QEMU
-icount, the kernel harness): the portable _f16 kernel against its float32 twin, and the
Helium variants of add, mul, maximum, minimum and the transposed convolution (the same bits as their models) against the portable ones. Every output is checked
against the numpy model (tinytrain/ops/f16.py) before it is counted.

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
    return out


def main(argv=None) -> int:
    import f16_cases as fc
    from kernel_harness import run_cases
    from tinytrain.resources import firmware_dir
    rows = cases()
    flat = [c for _, c16, c32, *mve in rows for c in ([c16] + ([c32] if c32 else []) + mve)]
    import f16_cases_binary
    import f16_cases_shape
    extra = ([firmware_dir() / "kernels" / f for f in ("add/add_f32.c", *f16_cases_binary.F32_KERNELS)]
             + f16_cases_shape.f32_kernels())
    with tempfile.TemporaryDirectory(prefix="bench-fp16-ops-") as tmp:
        res = {r.name: r for r in run_cases(BOARD, flat, tmp, kernels=fc.kernels() + extra)}
    table = []
    for label, c16, c32, *mve in rows:
        r = res[c16.name]
        assert r.ref_expected and r.identical is not False, label
        f32 = res[c32.name].ref_instr if c32 else None
        helium = r.var_instr
        if mve:     # a Helium variant with its own bits: its own case, checked against its model
            assert res[mve[0].name].ref_expected, mve[0].name
            helium = res[mve[0].name].ref_instr
        table.append([label, f"{f32:,}" if f32 else "", f"{r.ref_instr:,}",
                      f"{helium:,}" if helium else "",
                      f"{r.ref_instr / helium:.2f}x" if helium else ""])
    print(f"FP16 kernels on {BOARD}, instructions per call (outputs checked against the numpy model)")
    print(format_table(["kernel", "FP32 portable", "FP16 portable", "FP16 Helium", "Helium vs portable"], table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
