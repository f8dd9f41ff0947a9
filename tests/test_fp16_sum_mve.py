"""The Helium variants that sum halves in float32 lanes over the channels (the bias update, the
global mean, average pooling; tests/f16_cases_sum.py) on the emulated Cortex-M55 (QEMU,
mps3-an547): each output equals its numpy model byte for byte and the portable kernel's
output, with lane tails, zeros of both signs, subnormal halves, 65504, infinities and NaNs."""
import pytest

from kernel_harness import have_tools, run_cases

import f16_cases
import f16_cases_sum
from f16_device import assert_device_equals_simulation

pytestmark = pytest.mark.skipif(not have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm missing")


def test_helium_sum_kernels_equal_the_portable_kernels_and_their_model(tmp_path):
    cases = f16_cases_sum.sum_cases()
    results = run_cases("mps3-an547", cases, tmp_path, kernels=f16_cases.kernels())
    for r in results:
        assert r.ref_expected, r.name
        assert r.identical, r.name
        assert r.guards_ok, r.name


DIVISION_CHECK = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* tt_div_count_f32_mve (firmware/include/tt_f16_sum_mve.h) in scalar float32 with fused
 * multiply-adds, against a / count, for every float32 a in [1, 2) (every significand: the
 * other binades scale by a power of two) and every count up to MAX_COUNT; then -0. Prints the
 * number of quotients whose bits differ, and whether -0 / count comes out +0. */
int main(void)
{
    long bad = 0;
    int count, zero_sign = 0;
    uint32_t m;
    for (count = 1; count <= MAX_COUNT; ++count) {
        volatile float vb = (float)count;
        const float b = vb, inv = 1.0f / b, neg = -b;
        for (m = 0; m < (1u << 23); ++m) {
            const uint32_t bits = 0x3F800000u | m;
            float a, want, q0, q;
            memcpy(&a, &bits, 4);
            want = a / b;
            q0 = a * inv;
            q = fmaf(fmaf(q0, neg, a), inv, q0);
            if (memcmp(&want, &q, 4) != 0) ++bad;
        }
        {
            const float a = -0.0f, q0 = a * inv, q = fmaf(fmaf(q0, neg, a), inv, q0);
            zero_sign += signbit(q) == 0;
        }
    }
    printf("%ld %d\n", bad, zero_sign);
    return 0;
}
"""


def test_the_division_by_a_window_count_is_correctly_rounded(tmp_path):
    """The average pool kernels' division in the lanes (q0 = a * (1 / count), one fused
    remainder, one fused correction) gives the correctly rounded float32 quotient for every
    float32 significand and every count they divide by (up to TT_F16_DIV_MAX), except that
    -0 / count comes out +0 (never seen: the sums start at +0). Host gcc, exhaustive."""
    import re
    import shutil
    import subprocess
    from tinytrain.resources import firmware_dir
    header = (firmware_dir() / "include" / "tt_f16_sum_mve.h").read_text()
    most = int(re.search(r"#define TT_F16_DIV_MAX (\d+)", header).group(1))
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no host gcc")
    (tmp_path / "div.c").write_text(DIVISION_CHECK)
    exe = tmp_path / "div"
    subprocess.run([cc, "-O2", "-march=native", "-std=c99", "-ffp-contract=off", f"-DMAX_COUNT={most}",
                    str(tmp_path / "div.c"), "-lm", "-o", str(exe)], check=True)
    bad, zero_sign = (int(v) for v in subprocess.run([str(exe)], check=True, capture_output=True,
                                                     text=True).stdout.split())
    assert bad == 0
    assert zero_sign == most


@pytest.mark.parametrize("precision,scale", [("fp16", 1.0), ("mixed", "dynamic")])
def test_a_graph_of_them_trains_on_the_m55_with_the_numpy_references_bits(precision, scale, tmp_path):
    """tests/test_fp16_ops.py's graph (average pools 3x3 s1 padded and 2x2 s2, global means over
    36 and 9 pixels, conv biases over 36 pixels, a dense bias) trained over the serial link on
    mps3-an547, where the Helium variants run: the losses and every trained parameter equal the
    numpy reference's bits (which model the portable kernels)."""
    import numpy as np
    import tinytrain
    from test_fp16_ops import ops_net
    m = tinytrain.compile(ops_net(), scheme="full", board="mps3-an547", precision=precision, loss_scale=scale,
                          lr=0.05)
    called = m.emission.em.functions
    assert {"tt_bias_update_f16_mve", "tt_avg_pool2d_f16_mve", "tt_avg_pool2d_grad_input_f16_mve",
            "tt_global_avg_pool_f16_mve", "tt_global_avg_pool_grad_input_f16_mve"} <= called
    assert not {"tt_avg_pool2d_f16", "tt_global_avg_pool_f16"} & called       # (the variants call them only on inf / NaN)
    rng = np.random.default_rng(5)
    n = 6
    xs = rng.standard_normal((n, 6 * 6 * 3)).astype(np.float32)
    labels = rng.integers(0, 5, n)
    assert_device_equals_simulation(m, xs, labels, tmp_path / "fw")
