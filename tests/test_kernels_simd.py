"""The optimised int8 kernel variants (firmware/kernels/<op>/<op>_s8_dsp.c, _mve.c) give the
same bytes as the reference kernels, on many shapes and parameters that reach every branch
of a variant (blocked and leftover pixels / channels / K, borders, stride, dilation,
per-channel and per-tensor requantisation, both requantisation paths, activation clamps,
extreme zero points and values):
  - on the host: the _dsp kernels through tt_simd.h's portable C, against the reference
    kernel and the numpy reference (tinytrain.refops);
  - under QEMU: _dsp on mps2-an386 (Cortex-M4), _mve and _dsp on mps3-an547 (Cortex-M55),
    every case in one program per board (tests/kernel_harness.py), where the reference
    kernel's output must also equal the numpy expectation.
Also: the harness's instruction counts are repeatable and exact on a known loop, the
DSP requantisation formula holds on every int32 edge, and every variant file compiles
warning-free (-Wpedantic -Werror) for the host, and, in the QEMU builds, for the Cortex-M4
and the Cortex-M55."""
import subprocess

import numpy as np
import pytest

import ckernels as ck
import fc_backward_cases as fcb
import kernel_harness as kh
import simd_cases as sc
from kernel_variants import VARIANTS
from tinytrain import fixedpoint, kernel_prep
from tinytrain.resources import firmware_dir

# every variant file (<op>_<t>_dsp.c / _mve.c in the per-op folders)
VARIANT_SOURCES = sorted(p for p in (firmware_dir() / "kernels").glob("*/*.c") if p.stem.endswith(("_dsp", "_mve")))
NEEDS_ARM = pytest.mark.skipif(not kh.have_tools(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ck.load_kernels(pattern="*.c",
                           build_dir=tmp_path_factory.mktemp("ck_simd"))


def conv_layers(seed=0):
    """conv2d layers reaching every branch of tt_conv2d_s8_dsp / _mve."""
    rng = np.random.default_rng(seed)
    L = sc.conv_layer
    return [
        # 1x1 pointwise path: even / odd pixel counts, cout even / odd, cin % 4 = 0..3, K % 16
        L(rng, 4, 4, 16, 8),
        L(rng, 3, 5, 48, 16),
        L(rng, 5, 3, 7, 5, act="relu"),
        L(rng, 2, 3, 6, 3, act="relu6"),
        L(rng, 3, 3, 33, 9, kind="per-tensor"),
        L(rng, 1, 1, 1, 1),
        L(rng, 1, 3, 5, 2, kind="mixed"),
        L(rng, 4, 2, 20, 7, kind="exact"),
        L(rng, 3, 3, 8, 6, bias=False),
        L(rng, 2, 2, 64, 4, extreme=127),
        L(rng, 2, 2, 64, 4, extreme=-128),
        L(rng, 2, 3, 37, 11, zp=-128),
        # general path (im2col): 3x3 stride 2 on 3 channels (the first layer), padding,
        # dilation, 1x1 with stride, non-square kernels, odd everything
        L(rng, 9, 9, 3, 16, (3, 3), (2, 2), "same", act="relu6"),
        L(rng, 8, 8, 3, 8, (3, 3), (2, 2), "same"),
        L(rng, 7, 9, 5, 6, (3, 3), (1, 1), "same", act="relu"),
        L(rng, 9, 9, 4, 3, (3, 3), (1, 1), "same", (2, 2)),
        L(rng, 6, 5, 2, 4, (2, 3), (2, 1), "valid"),
        L(rng, 5, 5, 3, 2, (3, 3), (1, 1), (2, 0, 1, 2)),
        L(rng, 6, 6, 8, 5, (1, 1), (2, 2), "valid"),
        L(rng, 1, 1, 9, 4, (3, 3), (1, 1), "same", act="relu6"),
        L(rng, 6, 6, 3, 5, (3, 3), (1, 1), "same", kind="exact"),
        L(rng, 4, 4, 6, 3, (3, 3), (2, 2), "same", extreme=-128),
        L(rng, 5, 4, 16, 4, (3, 3), (1, 1), "same", kind="mixed", bias=False),
    ]


def dw_layers(seed=0):
    """depthwise_conv2d layers reaching every branch of the depthwise variants."""
    rng = np.random.default_rng(seed)
    L = lambda *a, **k: sc.conv_layer(rng, *a, depthwise=True, **k)  # noqa: E731
    return [
        L(6, 6, 8, None, (3, 3), (1, 1), "same"),                       # interior + borders
        L(5, 7, 12, None, (3, 3), (1, 1), "same", act="relu6"),
        L(7, 7, 5, None, (3, 3), (2, 2), "same", act="relu"),            # tail group of 1
        L(8, 6, 6, None, (3, 3), (2, 2), "same"),                       # tail group of 2
        L(6, 5, 7, None, (3, 3), (1, 1), "valid"),                      # tail group of 3
        L(9, 9, 4, None, (3, 3), (1, 1), "same", (2, 2)),               # dilation
        L(7, 8, 8, None, (5, 5), (1, 1), "same", kind="per-tensor"),    # 5x5
        L(6, 6, 8, None, (5, 5), (2, 2), "same", kind="mixed"),
        L(5, 6, 4, None, (3, 2), (1, 2), (2, 0, 1, 1)),                 # odd kernel, pads
        L(1, 1, 9, None, (3, 3), (1, 1), "same", act="relu6"),          # all border
        L(2, 2, 16, None, (7, 7), (1, 1), "same"),
        L(6, 6, 6, None, (3, 3), (1, 1), "same", kind="exact"),
        L(4, 4, 8, None, (3, 3), (1, 1), "same", extreme=127),
        L(4, 4, 8, None, (3, 3), (2, 2), "same", extreme=-128),
        L(5, 5, 12, None, (3, 3), (1, 1), "same", bias=False, zp=-128),
        L(4, 3, 3, None, (1, 1), (1, 1), "valid"),
    ]


def fc_layers(seed=0):
    """fully_connected layers: outputs % 4 and % 2, inputs % 16 and % 4, clamps, extremes."""
    rng = np.random.default_rng(seed)
    F = lambda *a, **k: sc.fc_layer(rng, *a, **k)  # noqa: E731
    return [F(1, 1), F(13, 7, act="relu"), F(64, 10, act="relu6"), F(160, 33), F(48, 16),
            F(3, 4), F(255, 3), F(17, 5, extreme=127), F(17, 5, extreme=-128), F(100, 6, bias=False),
            F(1280, 10)]


def inplace_layers(seed=0):
    """depthwise_conv2d_inplace: over its input (stride 1, same shape; odd paddings and
    dilations reach the ring's corner cases) and apart (any geometry)."""
    rng = np.random.default_rng(seed)
    L = lambda *a, **k: sc.conv_layer(rng, *a, depthwise=True, **k)  # noqa: E731
    I = sc.InplaceDepthwise  # noqa: E741
    return [I(L(8, 8, 8, None, (3, 3), (1, 1), "same")),
            I(L(6, 7, 12, None, (3, 3), (1, 1), "same", act="relu6")),
            I(L(5, 5, 5, None, (3, 3), (1, 1), "same")),                    # tail group
            I(L(7, 6, 11, None, (5, 5), (1, 1), "same", kind="mixed")),
            I(L(9, 9, 4, None, (3, 3), (1, 1), (1, 3, 2, 2), (2, 2))),      # dilation, pad_top 1
            I(L(9, 8, 9, None, (3, 3), (1, 1), (3, 1, 0, 4), (2, 2))),      # pad_top 3 of 4
            I(L(1, 1, 16, None, (3, 3), (1, 1), "same")),
            I(L(7, 7, 8, None, (3, 3), (2, 2), "same"), inplace=False),
            I(L(6, 6, 10, None, (3, 3), (1, 1), "valid"), inplace=False),
            I(L(4, 4, 8, None, (3, 3), (1, 1), "same", kind="exact"))]


def pw_dw_layers(seed=0):
    """pointwise + depthwise fused: ring of the minimum and of more rows, strides, dilation,
    odd channel counts (the pointwise's leftover pixels / K, the depthwise's tail group)."""
    rng = np.random.default_rng(seed)
    P = lambda *a, **k: sc.pw_dw_layer(rng, *a, **k)  # noqa: E731
    return [P(8, 8, 8, 24), P(7, 9, 5, 12, ring_extra=2), P(9, 9, 16, 13, (3, 3), (2, 2)),
            P(6, 6, 4, 8, (5, 5), (1, 1)), P(7, 7, 6, 10, (3, 3), (1, 1), "same", (2, 2)),
            P(5, 6, 3, 17, (3, 3), (2, 2), "valid", act="none"), P(4, 4, 8, 8, kind="exact"),
            P(1, 1, 8, 16)]


def grad_input_layers(seed=0):
    """conv2d and depthwise input gradients: 1x1 (the trained layers of the reference models;
    strided and padded too), 3x3 with
    stride / padding / dilation, cin % 8 = 0..7 (the blocked elements and the tail), more
    output channels than one stack chunk (64), all-zero pixels, accumulate, per-tensor
    scales, and denormal products (the _mve variant's fallback)."""
    rng = np.random.default_rng(seed)
    G = lambda *a, **k: sc.grad_input_case(rng, *a, **k)  # noqa: E731
    return [G(4, 4, 16, 8), G(5, 3, 13, 7), G(3, 3, 8, 70, zeros=0.6), G(4, 4, 3, 16, (3, 3), (2, 2), "same"),
            G(6, 5, 12, 5, (3, 3), (1, 1), "same", accumulate=1), G(7, 7, 9, 4, (3, 3), (1, 1), "same", (2, 2)),
            G(5, 6, 20, 6, (2, 3), (2, 1), "valid", per_channel=False), G(4, 4, 8, 8, zeros=1.0),
            G(4, 4, 24, 12, tiny=True), G(3, 4, 10, 6, (3, 3), (1, 1), "same", accumulate=1, tiny=True),
            G(2, 2, 1, 3, (3, 3), (1, 1), "same"),
            G(7, 5, 11, 40, (1, 1), (2, 2), (1, 0, 0, 1), accumulate=1),   # 1x1 strided, padded
            G(3, 7, 9, 33, zeros=0.8),                                       # 1x1, sparse, 2 blocks
            G(3, 3, 37, 9), G(2, 3, 48, 20, accumulate=1),                  # Helium rows: 16s + tail
            # depthwise: groups of eight channels and the last group of 1-7, strides, 5x5 and
            # 7x7, a kernel beyond the variants' 49 taps, denormals
            G(6, 6, 16, None, (3, 3), (1, 1), "same"), G(7, 5, 13, None, (3, 3), (2, 2), "same", accumulate=1),
            G(5, 5, 3, None, (5, 5), (1, 1), "same", per_channel=False), G(8, 8, 9, None, (7, 7), (2, 2), "same"),
            G(9, 9, 8, None, (3, 3), (1, 1), "same", (2, 2), zeros=0.0), G(3, 3, 4, None, (8, 8), (1, 1), "same"),
            G(4, 4, 12, None, (3, 3), (1, 1), "same", accumulate=1, tiny=True)]


def limit_layers(seed=0):
    """Every forward variant at the int32 limits (sc.LIMIT_ROLES): biases at and near
    INT32_MAX / INT32_MIN with sums pushing past them, in_zp -128 and 127, shifts that map a
    sum near 2^31 into the int8 range, and rescaled values next to the limit before out_zp
    (+-100) is added. The expectation is the C reference's: the bias and out_zp added with
    saturation."""
    rng = np.random.default_rng(seed)
    C, F = sc.limit_conv_layer, sc.limit_fc_layer
    D = lambda *a, **k: C(rng, *a, depthwise=True, **k)  # noqa: E731
    I = sc.InplaceDepthwise  # noqa: E741
    return [
        C(rng, 4, 4, 16, 11, zp=-128, out_zp=100),                               # 1x1: 4-pixel blocks
        C(rng, 3, 5, 13, 11, zp=127, out_zp=-100),                               # leftover pixels, K tail
        C(rng, 4, 2, 20, 10, zp=-128, out_zp=100, fast=True),                    # every channel fast
        C(rng, 5, 5, 6, 11, (3, 3), (1, 1), "same", zp=-128, out_zp=-100),       # im2col, padded taps
        C(rng, 7, 7, 3, 11, (3, 3), (2, 2), "same", zp=127, out_zp=100, act="relu6"),
        D(6, 6, 11, None, (3, 3), (1, 1), "same", zp=-128, out_zp=100),          # interior + border, tails
        D(7, 7, 16, None, (3, 3), (2, 2), "same", zp=127, out_zp=-100),
        D(6, 6, 12, None, (3, 3), (1, 1), "same", zp=127, out_zp=100, fast=True),
        D(5, 6, 8, None, (3, 3), (1, 1), "same", zp=-128, out_zp=20, fast=True, act="relu6"),
        D(6, 6, 11, None, (5, 5), (1, 1), "same", zp=-128, out_zp=-100),          # other interiors
        D(7, 7, 8, None, (3, 3), (1, 1), "same", (2, 2), zp=127, out_zp=100),
        F(rng, 64, 11, zp=-128, out_zp=100), F(rng, 37, 11, zp=127, out_zp=-100),
        F(rng, 16, 22, zp=-128, out_zp=-100), F(rng, 5, 3, zp=127, out_zp=100),
        I(D(6, 6, 11, None, (3, 3), (1, 1), "same", zp=127, out_zp=100)),
        I(D(7, 7, 16, None, (3, 3), (2, 2), "same", zp=-128, out_zp=-100), inplace=False),
        sc.limit_pw_dw_layer(rng, 6, 6, 8, 11, zp=-128, out_zp=100),
        sc.limit_pw_dw_layer(rng, 7, 5, 13, 16, (3, 3), (2, 2), zp=127, out_zp=-100),
        # the edge of the variants' proof that folding the bias is exact (tt_bias_fold_exact)
        *(sc.fold_boundary_layer(rng, 4, 5, 6, 5, (3, 3), sign=sg, beyond=b) for sg in (1, -1) for b in (0, 1)),
        *(sc.fold_boundary_layer(rng, 5, 4, 12, None, (3, 3), sign=sg, beyond=b, depthwise=True)
          for sg in (1, -1) for b in (0, 1)),
    ]


def check_nondegenerate(layer, want):
    """Random layers must produce varied outputs, or the comparison proves little."""
    if "exact" in layer.name or "x=" in layer.name or want.size < 8:
        return
    assert len(np.unique(want)) > 3, layer.name


# --- host --------------------------------------------------------------------------------------

@pytest.mark.parametrize("i", range(len(conv_layers())))
def test_conv2d_dsp_host(lib, i):
    layer = conv_layers()[i]
    want = layer.expected()
    check_nondegenerate(layer, want)
    np.testing.assert_array_equal(layer.run_host(lib, None), want, err_msg=layer.name)
    np.testing.assert_array_equal(layer.run_host(lib, "dsp"), want, err_msg=layer.name)


@pytest.mark.parametrize("i", range(len(dw_layers())))
def test_depthwise_dsp_host(lib, i):
    layer = dw_layers()[i]
    want = layer.expected()
    check_nondegenerate(layer, want)
    np.testing.assert_array_equal(layer.run_host(lib, None), want, err_msg=layer.name)
    np.testing.assert_array_equal(layer.run_host(lib, "dsp"), want, err_msg=layer.name)


@pytest.mark.parametrize("i", range(len(fc_layers())))
def test_fully_connected_dsp_host(lib, i):
    layer = fc_layers()[i]
    want = layer.expected()
    check_nondegenerate(layer, want)
    np.testing.assert_array_equal(layer.run_host(lib, None), want, err_msg=layer.name)
    np.testing.assert_array_equal(layer.run_host(lib, "dsp"), want, err_msg=layer.name)


@pytest.mark.parametrize("i", range(len(inplace_layers())))
def test_depthwise_inplace_dsp_host(lib, i):
    layer = inplace_layers()[i]
    want = layer.expected()
    np.testing.assert_array_equal(layer.run_host(lib, None), want, err_msg=layer.name)
    np.testing.assert_array_equal(layer.run_host(lib, "dsp"), want, err_msg=layer.name)


@pytest.mark.parametrize("i", range(len(pw_dw_layers())))
def test_pointwise_depthwise_dsp_host(lib, i):
    layer = pw_dw_layers()[i]
    want = layer.expected()
    np.testing.assert_array_equal(layer.run_host(lib, None), want, err_msg=layer.name)
    np.testing.assert_array_equal(layer.run_host(lib, "dsp"), want, err_msg=layer.name)


@pytest.mark.parametrize("i", range(len(limit_layers())))
def test_forward_dsp_host_at_the_int32_limits(lib, i):
    """The reference saturates where the bias (or out_zp) meets a sum at the int32 limit, and
    the _dsp variant gives its bytes."""
    layer = limit_layers()[i]
    want = layer.expected()
    assert len(np.unique(want)) > 1, layer.name          # not all one value (mostly saturated)
    np.testing.assert_array_equal(layer.run_host(lib, None), want, err_msg=layer.name)
    got = layer.run_host(lib, "dsp")
    assert np.array_equal(got, want), f"{layer.name}: {np.count_nonzero(got != want)} of {want.size} bytes differ"


@pytest.mark.parametrize("i", range(len(grad_input_layers())))
def test_grad_input_dsp_host(lib, i):
    """Float for float: the bytes of the _dsp variant's gradients equal the reference's."""
    layer = grad_input_layers()[i]
    want = layer.run_host(lib, None)
    assert np.isfinite(want).all()
    assert len(np.unique(want)) > 3 or not layer.gy.any(), layer.name      # not degenerate
    got = layer.run_host(lib, "dsp")
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=layer.name)


@pytest.mark.parametrize("i", range(len(fcb.fc_backward_cases())))
def test_fc_backward_dsp_host(lib, i):
    """The fully connected input / weight gradients and the QAS update of every mode: the
    _dsp variant's floats and bytes (weights, momentum, shadow, residual, PRNG state) equal
    the reference's."""
    case = fcb.fc_backward_cases()[i]
    want = case.run_host(lib, None)
    assert not np.array_equal(want.reshape(-1).view(np.int8), case.before()), case.name    # the call wrote
    got = case.run_host(lib, "dsp")
    np.testing.assert_array_equal(got.view(np.int8), want.view(np.int8), err_msg=case.name)


def test_requant_dsp_formula_on_int32_edges():
    """kernel_prep.requant_dsp's table + the one-SMLAL formula == TFLite's double rounding,
    for every right shift, edge multipliers and zero points, and edge accumulators."""
    rng = np.random.default_rng(7)
    acc = np.concatenate([np.arange(-3000, 3000), rng.integers(-(1 << 31), 1 << 31, 3000),
                          rng.integers(-(1 << 24), 1 << 24, 3000),
                          [-(1 << 31), -(1 << 31) + 1, (1 << 31) - 1, (1 << 31) - 2]]).astype(np.int64)
    shifts = np.arange(-31, 4)
    for mult in (0, 1, 1 << 30, (1 << 30) + 1, 1518500250, (1 << 31) - 1):
        for out_zp in (-128, -1, 0, 127):
            q = dict(in_zp=0, out_zp=out_zp, act_min=-128, act_max=127,
                     multiplier=np.full(shifts.size, mult, np.int32), shift=shifts.astype(np.int32))
            table = kernel_prep.requant_dsp(q)
            assert np.all((table[:, 2] >= 0) == ((shifts <= -2) & (shifts >= -22)))
            got = kernel_prep.requant_dsp_reference(acc[:, None], table, q)
            want = np.clip(fixedpoint.mul_by_quantized_multiplier(acc[:, None], q["multiplier"], q["shift"])
                           + out_zp, -128, 127)
            np.testing.assert_array_equal(got, want)


BIAS_FOLD_CHECK = r"""
#include <stdio.h>
#include "tt_kernels_simd.h"
int main(void)
{
    const int32_t zps[] = {-128, -1, 0, 5, 127}, taps[] = {1, 9, 27, 48, 1000, 32896, 65793, 65794, 131071, 200000};
    long bad = 0, n = 0;
    unsigned zi, ti, k;
    int d;
    for (zi = 0; zi < 5; zi++) for (ti = 0; ti < 10; ti++) {
        const int64_t dx = zps[zi] >= 0 ? 128 + zps[zi] : 127 - zps[zi];
        const int64_t bound = (int64_t)taps[ti] * dx * 128;
        const int64_t at[] = {INT32_MAX, INT32_MIN, 0, INT32_MAX - bound, INT32_MIN + bound, 1 << 30, -(1 << 30)};
        for (k = 0; k < 7; k++) for (d = -2; d <= 2; d++) {
            const int64_t b = at[k] + d;
            int32_t one[2];
            int want;
            if (b > INT32_MAX || b < INT32_MIN) continue;
            one[0] = 0;
            one[1] = (int32_t)b;
            want = bound <= INT32_MAX && b <= INT32_MAX - bound && b >= INT32_MIN + bound;
            n++;
            if (tt_bias_fold_exact(one, 2, taps[ti], zps[zi]) != want) {
                printf("zp %d taps %d bias %lld: not %d\n", (int)zps[zi], (int)taps[ti], (long long)b, want);
                bad++;
            }
        }
    }
    printf("%ld cases %ld wrong\n", n, bad);
    return bad != 0 || tt_bias_fold_exact(NULL, 4, 1 << 30, 0) != 1;
}
"""


def test_bias_fold_proof_is_its_definition(tmp_path):
    """tt_bias_fold_exact (the variants fold the bias into their sums only where it holds)
    == every |bias| <= INT32_MAX - taps * max|x - in_zp| * 128, at and around every edge."""
    (tmp_path / "fold.c").write_text(BIAS_FOLD_CHECK)
    build = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ck.INCLUDE}", "fold.c",
                            "-o", "fold"], cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(tmp_path / "fold")], capture_output=True, text=True)
    assert run.returncode == 0 and " 0 wrong" in run.stdout, run.stdout


def test_variant_sources_compile_warning_free_on_the_host(tmp_path):
    """-std=c99 -Wall -Wextra -Wpedantic -Werror with gcc (the _mve files compile to
    declarations only). The same flags build every kernel for the Cortex-M4 and the
    Cortex-M55 in the QEMU tests below (tests/kernel_harness.py)."""
    assert VARIANT_SOURCES and "-Wpedantic" in kh.CFLAGS and "-Werror" in kh.CFLAGS
    res = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-O2", "-ffp-contract=off",
                          f"-I{ck.INCLUDE}", "-c", *map(str, VARIANT_SOURCES)],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert len(list(tmp_path.glob("*.o"))) == len(VARIANT_SOURCES)


# --- QEMU --------------------------------------------------------------------------------------

def qemu_cases(variant: str) -> list:
    rng = np.random.default_rng(3)
    layers = (conv_layers(seed=1) + dw_layers(seed=1) + fc_layers(seed=1) + inplace_layers(seed=1)
              + pw_dw_layers(seed=1) + limit_layers(seed=1)
              + [sc.requant_case(rng, 64, 37, edges=True), sc.requant_case(rng, 16, 12, edges=True, act="relu6"),
                 sc.requant_case(rng, 24, 13, edges=True, limits=True, out_zp=100),
                 sc.requant_case(rng, 24, 13, edges=True, limits=True, out_zp=-100)])
    cases = [layer.case(variant) for layer in layers if variant in VARIANTS[layer.kind]]
    # the device's reference must also give the host reference's floats (IEEE single, no FMA)
    lib = ck.load_kernels(pattern="*.c")
    float_cases = grad_input_layers(seed=1) + fcb.fc_backward_cases(seed=1)
    return cases + [g.case(variant, expected=g.run_host(lib, None)) for g in float_cases
                    if variant in VARIANTS[g.kind]]


@NEEDS_ARM
@pytest.mark.parametrize("board,variants", [("mps2-an386", ("dsp",)), ("mps3-an547", ("mve", "dsp"))])
def test_variants_bit_exact_under_qemu(board, variants, tmp_path):
    cases = [c for v in variants for c in qemu_cases(v)]
    results = kh.run_cases(board, cases, build_dir=tmp_path)
    bad = [r for r in results if not r.ok or r.identical is not True or r.ref_expected is not True]
    assert not bad, "\n".join(f"{r.name}: identical={r.identical} ref==numpy={r.ref_expected} "
                              f"guards={r.guards_ok}{kh.diff_note(r)}" for r in bad)


@NEEDS_ARM
@pytest.mark.parametrize("board,variant", [("mps2-an386", "dsp"), ("mps3-an547", "mve")])
def test_unoptimised_builds_bit_exact_under_qemu(board, variant, tmp_path):
    """At -O0 the kernels leave out their inline-assembly loops (the compiler cannot allocate
    their registers there) and run the intrinsic versions: bit-exact too."""
    rng = np.random.default_rng(5)
    layers = [sc.conv_layer(rng, 4, 3, 37, 6), sc.conv_layer(rng, 6, 6, 16, None, (3, 3), (1, 1), "same",
                                                             depthwise=True)]
    results = kh.run_cases(board, [layer.case(variant) for layer in layers], build_dir=tmp_path, opt="-O0")
    assert all(r.ok and r.identical and r.ref_expected for r in results), results


@NEEDS_ARM
@pytest.mark.parametrize("board", kh.BOARDS)
def test_harness_counts_are_exact_and_repeatable(board, tmp_path):
    cases = []
    for n in (1000, 2000, 1000, 50000):
        c = kh.Case(f"loop {n}", out_bytes=1)
        c.ref = f"tt_known_loop({n}u);"
        cases.append(c)
    elf = kh.build(board, cases, tmp_path, kernels=[])
    first = kh.parse(cases, kh.run_elf(board, elf))
    again = kh.parse(cases, kh.run_elf(board, elf))
    assert [r.ref_instr for r in first] == [r.ref_instr for r in again]
    counts = [r.ref_instr for r in first]
    # SUBS + BNE per iteration, plus the call (MOV, BL, BX) and the loop's entry; on
    # mps3-an547 the first measurement of a program reads one more (seen, not explained)
    assert abs(counts[1] - counts[0] - 2000) <= 1 and abs(counts[2] - counts[0]) <= 1
    assert counts[1] - counts[2] == 2000
    assert 2000 < counts[0] <= 2000 + 8
    assert 100000 < counts[3] <= 100000 + 8
