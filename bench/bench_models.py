"""Instructions per MAC of whole models on the emulated boards, with the board's optimised
kernels (the `_dsp` variants on the Cortex-M4F mps2-an386, `_mve` on the Cortex-M55
mps3-an547), beside the issue's targets and the figures of the plain-C build before them.

Rows: MCUNet-5FPS inference, and one training step of each reference model (MCUNet-5FPS,
MbV2-w0.35, Proxyless-w0.3) with its `49kb` scheme and a fresh 10-class head, compiled as the
CLI does. Instructions are the firmware's own work counter (SysTick under QEMU -icount
shift=10: repeatable to the instruction), read over the link; the median of three samples.
MACs are counted the same way for every row: every tap of every output, padded taps
included (Graph MACs for inference; a training step's MACs as the program reports them:
forward + input gradients + weight gradients, TrainingProgram.macs()). With --reference
the same firmware is also built with the reference kernels only (board simd "none").
Run: python bench/bench_models.py [--board mps2-an386|mps3-an547] [--model NAME] [--reference]
"""
import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinytrain  # noqa: E402
from tinytrain import emulator  # noqa: E402
from tinytrain.boards import load_board  # noqa: E402
from tinytrain.frontends import load_model  # noqa: E402
from tinytrain.link import Link  # noqa: E402
from tinytrain.report import format_table  # noqa: E402

TTE = ROOT / ".." / "shared" / "reference" / "tte-models"
MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
BOARDS = {"mps2-an386": "Cortex-M4F, _dsp", "mps3-an547": "Cortex-M55, _mve"}
# issue 12: instructions per MAC before the optimised kernels (M4), and the targets
BEFORE = {("mcunet-5fps", "inference", "mps2-an386"): 12.8, ("mcunet-5fps", "49kb step", "mps2-an386"): 11.1,
          ("mbv2-w0.35", "49kb step", "mps2-an386"): 13.7, ("proxyless-w0.3", "49kb step", "mps2-an386"): 13.0}
TARGET = {("inference", "mps2-an386"): 3.5, ("49kb step", "mps2-an386"): 3.5, ("49kb step", "mps3-an547"): 1.5}


def measure(model: str, board, train: bool, samples: int = 3) -> tuple[int, int]:
    """(instructions of the median sample, MACs) of one inference or one training step."""
    graph = load_model(TTE / f"{model}.json")
    scheme = str(TTE / "schemes" / f"{model}-49kb.json") if train else None
    compiled = tinytrain.compile(graph, scheme=scheme, num_classes=10 if train else None, board=board, lr=0.01)
    macs = compiled.program.macs()["total"] if train else compiled.macs
    x = np.random.default_rng(0).integers(-128, 128, size=(samples, 128 * 128 * 3), dtype=np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw"
        compiled.build_project(fw)
        with emulator.boot(fw) as running, Link.open(running.url, timeout=10.0) as link:
            if train:
                work = [r.work for r in link.train_many(x, list(range(samples)))]
            else:
                work = [link.infer(s).work for s in x]
    return int(np.median(work)), int(macs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", choices=sorted(BOARDS), action="append")
    ap.add_argument("--model", choices=MODELS, action="append")
    ap.add_argument("--reference", action="store_true", help="also measure the reference kernels' build")
    args = ap.parse_args()
    print("MACs: every tap of every output, padded taps included; a training step: forward + input "
          "gradients + weight gradients (TrainingProgram.macs()). Instructions: the firmware's work "
          "counter (SysTick, QEMU -icount), median of 3 samples.")
    for name in args.board or sorted(BOARDS):
        board = load_board(name)
        rows = []
        for model in args.model or MODELS:
            for what in (("inference", "49kb step") if model == "mcunet-5fps" else ("49kb step",)):
                instr, macs = measure(model, board, what != "inference")
                row = [model, what, f"{macs:,}", f"{instr:,}", f"{instr / macs:.2f}"]
                if args.reference:
                    ref, _ = measure(model, dataclasses.replace(board, simd="none"), what != "inference")
                    row += [f"{ref / macs:.2f}", f"{ref / instr:.2f}x"]
                before = BEFORE.get((model, what, name))
                target = TARGET.get((what, name))
                rows.append(row + [f"{before}" if before else "-", f"<= {target}" if target else "-"])
        head = ["model", "what", "MACs", "instructions", "per MAC"]
        if args.reference:
            head += ["reference C per MAC", "speed-up"]
        print(f"\n{name} ({BOARDS[name]})")
        print(format_table(head + ["before (issue 12)", "target"], rows))


if __name__ == "__main__":
    main()
