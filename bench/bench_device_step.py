"""Training-step cost of the reference models on the emulated Cortex-M4F (mps2-an386).

For each model with its `49kb` scheme and a fresh 10-class head, compiled as the CLI does,
prints the instructions of one inference and one training step counted under QEMU
-icount (repeatable), the SRAM/flash of the firmware, and the step time those instruction
counts would take at the STM32F746's 216 MHz at one instruction per cycle (a rough
bound: the M7 is dual-issue, but our kernels are plain reference C, not SIMD), beside the
paper's measured step latency. Run: python bench/bench_device_step.py
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinytrain  # noqa: E402
from tinytrain import emulator  # noqa: E402
from tinytrain.frontends import load_model  # noqa: E402
from tinytrain.link import Link  # noqa: E402
from tinytrain.report import format_table  # noqa: E402

MODELS = {"mcunet-5fps": 546, "mbv2-w0.35": 373, "proxyless-w0.3": 443}   # paper, ms per step
TTE = ROOT / ".." / "shared" / "reference" / "tte-models"


def measure(name: str) -> dict:
    graph = load_model(TTE / f"{name}.json")
    compiled = tinytrain.compile(graph, scheme=str(TTE / "schemes" / f"{name}-49kb.json"), num_classes=10,
                                 board="mps2-an386", lr=0.01)
    x = np.random.default_rng(0).integers(-128, 128, size=(3, 128 * 128 * 3), dtype=np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw"
        built = compiled.build_project(fw)["build"]
        with emulator.boot(fw) as running, Link.open(running.url, timeout=5.0) as link:
            infer = link.infer(x[0]).work
            steps = [r.work for r in link.train_many(x, [1, 2, 3])]
    return dict(model=name, infer=infer, step=int(np.median(steps)), sram=built["sram_bytes"],
                flash=built["flash_bytes"], paper_ms=MODELS[name])


def main():
    rows = [measure(m) for m in MODELS]
    print(format_table(
        ["model (49kb, 10 classes)", "inference instr", "train step instr", "firmware SRAM B", "firmware flash B",
         "step ms @216MHz, 1 instr/cycle", "paper step ms (STM32F746)"],
        [[r["model"], f"{r['infer']:,}", f"{r['step']:,}", f"{r['sram']:,}", f"{r['flash']:,}",
          f"{r['step'] / 216e3:.0f}", r["paper_ms"]] for r in rows]))


if __name__ == "__main__":
    main()
