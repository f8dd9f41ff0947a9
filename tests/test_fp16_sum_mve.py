"""The Helium variants that sum halves in float32 lanes over the channels (the bias update, the
global mean, average pooling; tests/f16_cases_sum.py) on the emulated Cortex-M55 (QEMU,
mps3-an547): each output equals its numpy model byte for byte and the portable kernel's
output, with lane tails, zeros of both signs, subnormal halves, 65504, infinities and NaNs."""
import pytest

from kernel_harness import have_tools, run_cases

import f16_cases
import f16_cases_sum

pytestmark = pytest.mark.skipif(not have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm missing")


def test_helium_sum_kernels_equal_the_portable_kernels_and_their_model(tmp_path):
    cases = f16_cases_sum.sum_cases()
    results = run_cases("mps3-an547", cases, tmp_path, kernels=f16_cases.kernels())
    for r in results:
        assert r.ref_expected, r.name
        assert r.identical, r.name
        assert r.guards_ok, r.name
