"""The Helium half-precision kernels (_f16_mve) on the emulated Cortex-M55 (QEMU, mps3-an547):
each output equals its numpy model (tinytrain/ops/f16.py: fused multiply-adds in half, the
lane order) byte for byte, on shapes with tails, padding, strides, dilation and accumulation."""
import pytest

from kernel_harness import have_tools, run_cases

import f16_cases

pytestmark = pytest.mark.skipif(not have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm missing")


def test_helium_f16_kernels_equal_their_numpy_model(tmp_path):
    cases = []
    cases += f16_cases.conv_cases(6, 7, 8, 8, seed=1)
    cases += f16_cases.conv_cases(5, 5, 3, 5, seed=2, stride=2, acc=1)                  # tails, stride
    cases += f16_cases.conv_cases(7, 6, 12, 9, k=3, pad=2, dil=2, seed=3)               # dilation
    cases += f16_cases.conv_cases(4, 4, 17, 4, k=1, pad=0, seed=4, acc=1)               # 1x1, 2 tails
    cases += f16_cases.conv_cases(8, 8, 1, 8, seed=5)                                   # cin 1 (digits conv1)
    cases += f16_cases.conv_cases(16, 16, 32, 4, seed=13)                               # 32 channels: full blocks
    cases += f16_cases.conv_cases(8, 8, 32, 4, seed=11, rule=dict(momentum=0.5, wd=0.01, scale=8.0))
    cases += f16_cases.conv_cases(8, 8, 16, 3, seed=12, rule=dict(master=True, momentum=0.9, scale=256.0))
    cases += f16_cases.depthwise_cases(6, 7, 8, seed=14)
    cases += f16_cases.depthwise_cases(7, 5, 13, stride=2, seed=15, acc=1, act="relu6")      # a tail of 5
    cases += f16_cases.depthwise_cases(6, 6, 20, pad=2, dil=2, seed=16, act="none", rule=dict(momentum=0.9))
    cases += f16_cases.depthwise_cases(12, 11, 9, k=9, pad=4, seed=17)       # 81 taps: a tap at a time
    cases += f16_cases.fc_cases(64, 10, seed=6)
    cases += f16_cases.fc_cases(21, 7, seed=7, acc=1, rule=dict(scale=64.0))          # a tail of 5
    cases += [f16_cases.fc_update_edges()]
    same = f16_cases.mask_cases(37) + f16_cases.mask_cases(16, seed=1)      # the portable kernels' bits
    same += f16_cases.maxpool_cases() + f16_cases.maxpool_cases(10, 5, 32, k=5, stride=5, seed=2, act=2)
    exact = f16_cases.exact_f32_cases(6, 7, 20, 6, seed=8) + f16_cases.exact_f32_cases(5, 5, 3, 5, stride=2, seed=9) \
        + f16_cases.exact_f32_cases(7, 6, 5, 9, pad=2, dil=2, seed=10)
    results = run_cases("mps3-an547", cases + exact + same, tmp_path, kernels=f16_cases.kernels())
    for r in results[len(cases):]:     # the FP32 Helium baseline where all is exact; the masks
        assert r.identical, r.name
        assert r.guards_ok, r.name
    for r in results[:len(cases)]:
        assert r.ref_expected, r.name
        if r.name.startswith("fc") and r.name.endswith("update"):     # the portable kernel's bits
            assert r.identical, r.name
        assert r.guards_ok, r.name
        assert r.var_instr is not None
