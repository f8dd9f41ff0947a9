"""Where the instructions of one training step go, per kernel, on an emulated board.

The model's training step is compiled as bench/bench_models.py compiles it (its `49kb`
scheme, a fresh 10-class head); then a copy of the generated model.c is instrumented: every
kernel call of the training step (forward and backward) is wrapped in two reads of the
firmware's work counter (tt_hal_work_count: SysTick under QEMU -icount, exact), the
differences are summed per call site, and at the end of the step the sums are written to
the emulator's console through ARM semihosting (SYS_WRITE0). The instrumented firmware is
only measured, never used: the counter reads themselves (~20 instructions a call) are
not included in any kernel's figure, so the kernels' sum is a little below the step's.

Prints, per kernel function (and with --sites per call site): instructions of one step
(the median of three samples' last one), share, MACs where the kernel carries them
(forward, grad input, grad weight as TrainingProgram.macs counts them) and per MAC.
Run: python bench/profile_step.py --board mps3-an547 --model mbv2-w0.35 [--sites]
"""
import argparse
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinytrain  # noqa: E402
from tinytrain import emulator  # noqa: E402
from tinytrain.boards import load_board  # noqa: E402
from tinytrain.frontends import load_model  # noqa: E402
from tinytrain.link import Link  # noqa: E402
from tinytrain.project import build_project  # noqa: E402
from tinytrain.report import format_table  # noqa: E402

TTE = ROOT / ".." / "shared" / "reference" / "tte-models"
MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
CALL = re.compile(r"^(\s+)((?:loss = )?(tt_[a-z0-9_]+|memcpy)\(.*\);)\s*$")

PROFILE_C = r"""
/* ---- bench/profile_step.py: per call site work counts (not part of any real build) ---- */
#include "tt_hal.h"
static uint32_t tt_prof_sum[%(n)d];
static uint32_t tt_prof_t0;
#define TT_PROF(i, stmt) do { tt_prof_t0 = tt_hal_work_count(); stmt; \
    tt_prof_sum[i] += tt_hal_work_count() - tt_prof_t0; } while (0)
static void tt_prof_dump(void)
{
    static char line[16 * %(n)d + 16];
    static const char hex[] = "0123456789abcdef";
    int32_t i, k, n = 0;
    register uint32_t r0 __asm__("r0");
    register void *r1 __asm__("r1");
    memcpy(line, "TTPROF", 6);
    n = 6;
    for (i = 0; i < %(n)d; i++) {
        line[n++] = ' ';
        for (k = 28; k >= 0; k -= 4) line[n++] = hex[(tt_prof_sum[i] >> k) & 15u];
        tt_prof_sum[i] = 0;
    }
    line[n++] = '\n';
    line[n] = 0;
    r0 = 0x04u;            /* SYS_WRITE0 */
    r1 = line;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}
"""


def instrument(model_c: str) -> tuple[str, list[tuple[str, str]]]:
    """model.c with the training step's kernel calls counted; the sites (function, layer)."""
    lines = model_c.splitlines()
    out, sites = [], []
    inside, layer = False, ""
    for line in lines:
        if line.startswith(("static void tt_train_forward(void)", "float tt_model_train_step(")):
            inside = True
        elif line == "}":
            inside = False
        m = CALL.match(line) if inside else None
        c = re.match(r"\s*/\* (?:backward )?(\S+)", line)
        if inside and c:
            layer = c.group(1)
        if m and m.group(3) not in ("tt_model_reset_optimizer",):
            out.append(f"{m.group(1)}TT_PROF({len(sites)}, {m.group(2)});")
            sites.append((m.group(3), layer))
            continue
        if inside and line.strip() == "return loss;" and out and out[-1].strip() != "}":
            out.append("    tt_prof_dump();")
        out.append(line)
    text = "\n".join(out) + "\n"
    head = text.index("static void tt_train_forward(void)")
    text = text[:head] + PROFILE_C % {"n": max(len(sites), 1)} + text[head:]
    return text, sites


def profile(model: str, board_name: str, samples: int = 3):
    graph = load_model(TTE / f"{model}.json")
    compiled = tinytrain.compile(graph, scheme=str(TTE / "schemes" / f"{model}-49kb.json"), num_classes=10,
                                 board=load_board(board_name), lr=0.01)
    macs = compiled.program.macs()
    x = np.random.default_rng(0).integers(-128, 128, size=(samples, 128 * 128 * 3), dtype=np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw"
        compiled.build_project(fw)
        src = fw / "src" / "model.c"
        text, sites = instrument(src.read_text())
        src.write_text(text)
        build_project(fw)
        with emulator.boot(fw) as running, Link.open(running.url, timeout=10.0) as link:
            work = [r.work for r in link.train_many(x, list(range(samples)))]
        log = (fw / emulator.LOG_FILE).read_text(errors="replace")
    dumps = [[int(v, 16) for v in ln.split()[1:]] for ln in log.splitlines() if ln.startswith("TTPROF")]
    if len(dumps) < samples:
        raise SystemExit(f"{len(dumps)} profile dumps of {samples} steps:\n{log[-2000:]}")
    step = int(np.median(work))
    last = dumps[-1]
    return step, sites, last, macs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", choices=("mps2-an386", "mps3-an547"), default="mps3-an547")
    ap.add_argument("--model", choices=MODELS, action="append")
    ap.add_argument("--sites", action="store_true", help="also one row per call site")
    args = ap.parse_args()
    for model in args.model or MODELS:
        step, sites, counts, macs = profile(model, args.board)
        per_fn = defaultdict(int)
        calls = defaultdict(int)
        for (fn, _), n in zip(sites, counts):
            per_fn[fn] += n
            calls[fn] += 1
        total = sum(counts)
        print(f"\n{model} on {args.board}: step {step:,} instructions (instrumented build), "
              f"MACs {macs['total']:,} (forward {macs['forward']:,}, grad input {macs['grad_input']:,}, "
              f"grad weight {macs['grad_weight']:,}); kernels {total:,}, per MAC {step / macs['total']:.2f}")
        rows = [[fn, calls[fn], f"{n:,}", f"{100 * n / step:.1f}%", f"{n / macs['total']:.3f}"]
                for fn, n in sorted(per_fn.items(), key=lambda kv: -kv[1])]
        rows.append(["(outside the kernels)", "", f"{step - total:,}", f"{100 * (step - total) / step:.1f}%",
                     f"{(step - total) / macs['total']:.3f}"])
        print(format_table(["kernel", "calls", "instructions", "share", "per step MAC"], rows))
        if args.sites:
            rows = [[layer, fn, f"{n:,}"] for (fn, layer), n in zip(sites, counts)]
            print(format_table(["layer", "kernel", "instructions"], rows))


if __name__ == "__main__":
    main()
