"""Instructions of the int8 kernels on the emulated Cortex-M boards: the reference C kernels
against their optimised variants (firmware/kernels/<op>/<op>_s8_dsp.c on the Cortex-M4F
mps2-an386, _mve.c on the Cortex-M55 mps3-an547), on the issue's anchor layers and on
layers of MCUNet-5FPS, beside CMSIS-NN's figures measured on the same anchor layers.

Counted the project's way: bare-metal programs under QEMU -icount shift=10, SysTick
(tests/kernel_harness.py; repeatable to the instruction). Every row also checks that the
variant's output equals the reference kernel's byte for byte and the reference's equals the
numpy reference. MACs are counted the same way for every kernel: every tap of every output,
padded taps included (conv: out_h*out_w*cout*kh*kw*cin; depthwise: out_h*out_w*c*kh*kw;
fully connected: in*out; fused pointwise+depthwise: both parts; a fully connected weight
update: one per weight; the fused weight-gradient + update rows of conv2d / depthwise: every
tap of every output over the trained channels, tests/update_cases.py); the requantisation
row counts outputs instead, the add row (Cortex-M55 only: tt_add_s8_mve) elements. A kernel
without a Helium variant would run its _dsp variant on the Cortex-M55, as a compiled model
does; the weight-update rows are measured on the Cortex-M55 with the _dsp variant too (the
rows marked "(_dsp)": the M55 ran those before their Helium forms).
Run: python bench/bench_kernels.py [--board mps2-an386|mps3-an547]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import add_cases  # noqa: E402
import fc_backward_cases as fcb  # noqa: E402
import kernel_harness as kh  # noqa: E402
import simd_cases as sc  # noqa: E402
from kernel_variants import VARIANTS  # noqa: E402
import update_cases as uc  # noqa: E402
from tinytrain.report import format_table  # noqa: E402

VARIANT = {"mps2-an386": "dsp", "mps3-an547": "mve"}
# the targets and CMSIS-NN's instructions/MAC measured on the same layers (M4, M55)
TARGET = {("1x1 anchor", "mps2-an386"): 2.2, ("1x1 anchor", "mps3-an547"): 0.45,
          ("3x3 dw anchor", "mps2-an386"): 7.5, ("3x3 dw anchor", "mps3-an547"): 2.4}
CMSIS = {("1x1 anchor", "mps2-an386"): 2.28, ("1x1 anchor", "mps3-an547"): 0.48,
         ("3x3 dw anchor", "mps2-an386"): 8.0, ("3x3 dw anchor", "mps3-an547"): 2.47}


def layers(seed=0):
    """(label, layer): the anchors, then MCUNet-5FPS's shapes (relu6 clamps as in the model)."""
    rng = np.random.default_rng(seed)
    conv, fc = sc.conv_layer, sc.fc_layer
    return [
        ("1x1 anchor", conv(rng, 16, 16, 48, 16, name="16x16x48 -> 16")),
        ("1x1 anchor, K x2", conv(rng, 16, 16, 96, 16, name="16x16x96 -> 16")),
        ("3x3 dw anchor", conv(rng, 16, 16, 48, None, (3, 3), (1, 1), "same", depthwise=True,
                               name="16x16x48, s1, pad 1")),
        ("first layer", conv(rng, 128, 128, 3, 16, (3, 3), (2, 2), "same", act="relu6",
                             name="128x128x3 -> 16, 3x3 s2")),
        ("1x1 MCUNet", conv(rng, 32, 32, 48, 16, act="relu6", name="32x32x48 -> 16")),
        ("dw 3x3 s2", conv(rng, 64, 64, 32, None, (3, 3), (2, 2), "same", act="relu6", depthwise=True,
                           name="64x64x32, s2")),
        ("dw 7x7 s2", conv(rng, 32, 32, 48, None, (7, 7), (2, 2), "same", act="relu6", depthwise=True,
                           name="32x32x48, s2")),
        ("dw in place", sc.InplaceDepthwise(conv(rng, 32, 32, 48, None, (3, 3), (1, 1), "same", act="relu6",
                                                 depthwise=True, name="32x32x48, s1"))),
        ("pw + dw fused", sc.pw_dw_layer(rng, 32, 32, 16, 48, name="32x32x16 -> 48, dw 3x3 s1")),
        ("fully connected", fc(rng, 160, 1000, name="160 -> 1000")),
        ("requantisation", sc.requant_case(rng, 256, 48, name="16x16x48 outputs")),
        # training: the float input gradients of int8 layers (half the gradients zero, as a
        # ReLU mask leaves them; MACs counted over every gradient, zero or not)
        ("grad-input 1x1", sc.grad_input_case(rng, 16, 16, 16, 48, zeros=0.5, name="dy 16x16x48 -> dx 16 ch")),
        ("grad-input 3x3", sc.grad_input_case(rng, 16, 16, 16, 16, (3, 3), (1, 1), "same", zeros=0.5,
                                              name="dy 16x16x16 -> dx 16 ch, 3x3")),
        ("grad-input dw 3x3", sc.grad_input_case(rng, 16, 16, 48, None, (3, 3), (1, 1), "same", zeros=0.5,
                                                 name="16x16x48, s1")),
        # the fused weight gradient + QAS update (stochastic rounding, the default), as the
        # reference models' trained 1x1 layers: MACs over the trained channels
        ("update 1x1 8x8", uc.make(rng, "conv2d", "update", 8, 8, 32, 192, zeros=0.5, name="8x8x32 -> 192, k 32")),
        ("update 1x1 4x4", uc.make(rng, "conv2d", "update", 4, 4, 192, 56, trained=48, zeros=0.5,
                                   name="4x4x192 -> 56, k 48 of 192")),
        ("update dw 3x3", uc.make(rng, "depthwise_conv2d", "update", 8, 8, 192, None, (3, 3), (1, 1), "same",
                                  trained=42, zeros=0.5, name="8x8x192, k 42")),
        # MbV2-w0.35's trained depthwise layer (49kb scheme): 42 of 336 channels, a saved copy
        ("update dw 3x3 4x4", uc.make(rng, "depthwise_conv2d", "update", 4, 4, 336, None, (3, 3), (1, 1), "same",
                                      trained=42, index=True, saved=True, zeros=0.5,
                                      name="4x4x336, k 42 of 336")),
        # the fully connected backward of an int8 classifier on MCUNet's 160 features, 100
        # classes (the float gradients must fit the AN547's RAM twice): gradients (MACs: in *
        # out) and the fused QAS update (MACs: one product per weight), no momentum
        ("FC grad-input", fcb.grad_input_case(rng, 160, 100, zeros=0.0, name="dy 100 -> dx 160")),
        ("FC grad-weight", fcb.grad_weight_case(rng, 160, 100, name="160 x 100")),
        ("FC update, stochastic", fcb.update_case(rng, 160, 100, mode="stochastic", name="160 x 100")),
        ("FC update, nearest", fcb.update_case(rng, 160, 100, mode="nearest", name="160 x 100")),
        ("FC update, residual", fcb.update_case(rng, 160, 100, mode="residual", name="160 x 100")),
        ("FC update, shadow", fcb.update_case(rng, 160, 100, mode="shadow", name="160 x 100")),
    ]


def add_row(rng):
    """The elementwise add of MbV2's first residual (32x32x8), per element."""
    return add_cases.case(rng, 32 * 32 * 8, add_cases.params(rng), "32x32x8")


def board_variant(board: str, kind: str) -> str:
    """The board's variant of a kernel: its own (_dsp / _mve), or the _dsp one where a
    kernel has no Helium variant (the Cortex-M55 runs it, as a compiled model does)."""
    v = VARIANT[board]
    return v if v in VARIANTS[kind] else "dsp"


# rows the Cortex-M55 also runs with the _dsp variant, beside its _mve one: the training
# updates, where the Helium forms are the newer ones (the _dsp ones served the M55 before)
BESIDE_DSP = ("update ", "FC update")


def measure(board: str):
    items = layers()
    variant = VARIANT[board]
    if variant == "mve":
        items += [(label + " (_dsp)", layer) for label, layer in layers() if label.startswith(BESIDE_DSP)
                  and "mve" in VARIANTS[layer.kind]]
    cases = [layer.case("dsp" if label.endswith("(_dsp)") else board_variant(board, layer.kind))
             for label, layer in items]
    if variant == "mve":   # add has only a Helium variant
        items.append(("add", None))
        cases.append(add_row(np.random.default_rng(1)))
    results = kh.run_cases(board, cases)
    rows = []
    for (label, layer), r in zip(items, results):
        if layer is None:   # the add row
            rows.append([label, "add 32x32x8", f"{r.macs:,} elements", f"{r.ref_instr:,}",
                         f"{r.ref_instr / r.macs:.2f}", f"{r.var_instr:,}", f"{r.var_instr / r.macs:.2f}",
                         f"{r.ref_instr / r.var_instr:.1f}x", "yes" if r.ok and r.identical else "NO", "", ""])
            continue
        unit = "output" if layer.kind == "requantize" else "MAC"
        ok = r.identical and r.ref_expected is not False and r.guards_ok
        v = "dsp" if label.endswith("(_dsp)") else board_variant(board, layer.kind)
        rows.append([label + ("" if v == VARIANT[board] or label.endswith("(_dsp)") else f" (_{v})"),
                     f"{layer.kind} {layer.name.split(' relu')[0].split(' none')[0]}",
                     f"{r.macs:,} {unit}s", f"{r.ref_instr:,}", f"{r.ref_instr / r.macs:.2f}",
                     f"{r.var_instr:,}", f"{r.var_instr / r.macs:.2f}", f"{r.ref_instr / r.var_instr:.1f}x",
                     "yes" if ok else "NO",
                     f"<= {TARGET[(label, board)]}" if (label, board) in TARGET else "",
                     f"{CMSIS[(label, board)]}" if (label, board) in CMSIS else ""])
    return rows, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", choices=sorted(VARIANT), action="append")
    args = ap.parse_args()
    if not kh.have_tools():
        sys.exit("arm-none-eabi-gcc and qemu-system-arm are needed")
    print("MACs: every tap of every output, padded taps included; the requantisation row is per output.")
    for board in args.board or sorted(VARIANT):
        rows, results = measure(board)
        variant = VARIANT[board]
        print(f"\n{board} ({'Cortex-M4F, DSP extension' if variant == 'dsp' else 'Cortex-M55, Helium'}): "
              f"reference C vs tt_*_s8_{variant}")
        print(format_table(["layer", "kernel, shape", "work", "reference instr", "per MAC",
                            f"_{variant} instr", "per MAC", "speed-up", "bit-exact", "target", "CMSIS-NN"],
                           rows))
        k1, k2 = results[0], results[1]
        print(f"1x1 marginal cost (16x16x48 -> 16 vs 16x16x96 -> 16): "
              f"{(k2.var_instr - k1.var_instr) / (k2.macs - k1.macs):.3f} instr/MAC "
              f"(the inner loop; the rest of 1x1 anchor's figure is widening, requantisation, loops)")


if __name__ == "__main__":
    main()
