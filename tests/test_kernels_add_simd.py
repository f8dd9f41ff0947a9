"""tt_add_s8_mve (firmware/kernels/add/add_s8_mve.c) gives tt_add_s8's bytes under QEMU on
the Cortex-M55 (mps3-an547), and both equal the numpy reference (tinytrain.ops.add.add_s8),
on the cases of tests/add_cases.py (every tail, both clamps, the multiplier corners)."""
import pytest

import add_cases
import kernel_harness as kh

NEEDS_ARM = pytest.mark.skipif(not kh.have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")


@NEEDS_ARM
def test_add_mve_bit_exact_under_qemu(tmp_path):
    results = kh.run_cases("mps3-an547", add_cases.cases(), build_dir=tmp_path)
    bad = [r for r in results if not r.ok or r.identical is not True or r.ref_expected is not True]
    assert not bad, "\n".join(f"{r.name}: identical={r.identical} ref==numpy={r.ref_expected}" for r in bad)
