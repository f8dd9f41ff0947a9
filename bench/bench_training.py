"""Training memory of the three reference models under their 5 shipped schemes.

Prints, for every model and scheme: our total SRAM (arena + trainable parameters and
optimizer state), its breakdown, flash and MACs per training step, beside the figures
published in ../shared/reference/README.md; once with the 1000-class ImageNet head and
once with a fresh `--num-classes` head (the paper trains transfer datasets with a small
head), plus a full update for comparison.

    /opt/tt/venv/bin/python bench/bench_training.py [--num-classes 10] [--momentum] [--no-memory-passes]

By default the graph first goes through tinytrain.passes.optimize_for_memory on the
frozen prefix of each scheme (fused pointwise+depthwise, in-place depthwise).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / ".." / "shared" / "reference" / "tte-models"
sys.path.insert(0, str(ROOT))

from tinytrain.frontends.reference import load_reference          # noqa: E402
from tinytrain.passes import frozen_prefix, optimize_for_memory   # noqa: E402
from tinytrain.training.scheme import bind_scheme                 # noqa: E402
from tinytrain.training.head import replace_classifier            # noqa: E402
from tinytrain.training.memory import memory_report               # noqa: E402
from tinytrain.training.program import build_program              # noqa: E402

MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
BUDGETS = {"mcunet-5fps": ("49kb", "74kb", "99kb", "124kb", "148kb"),
           "mbv2-w0.35": ("49kb", "73kb", "99kb", "123kb", "138kb"),
           "proxyless-w0.3": ("49kb", "74kb", "98kb", "120kb", "148kb")}
# peak training memory from the paper (KB): full update, sparse, sparse + reordering
PUBLISHED = {"mcunet-5fps": (3650, 560, 173), "mbv2-w0.35": (2939, 335, 141),
             "proxyless-w0.3": (2745, 326, 135)}
AUTHORS_MCUNET_49KB = {"total": 237456, "activations": 180224, "scratch": 9576,
                       "trainable": 47656, "flash": 478144, "macs": 32.7e6}
KB = 1024


def row(graph, scheme: str, label: str, momentum: bool, passes: bool = True) -> dict:
    bound = bind_scheme(scheme, graph)      # conv_index counts the original layers: bind first
    if passes:   # fused pointwise+depthwise and in-place depthwise in the frozen prefix
        graph = optimize_for_memory(graph, frozen_prefix(graph, bound))
    prog = build_program(graph, bound, momentum=momentum)
    m = memory_report(prog)
    return {"label": label, "m": m, "macs": prog.macs()["total"]}


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    hdr = (f"{'model / scheme':28s} {'total KB':>9s} {'arena':>8s} {'trainable':>9s} {'fwd peak':>8s} "
           f"{'saved':>7s} {'masks':>7s} {'grads':>8s} {'scratch':>7s} {'flash KB':>8s} {'MMAC':>6s}  paper KB")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        m = r["m"]
        b = m["breakdown"]
        print(f"{r['label']:28s} {m['total_sram_bytes'] / KB:9.1f} {m['arena_bytes'] / KB:8.1f} "
              f"{m['trainable_param_bytes'] / KB:9.1f} {m['forward_peak_bytes'] / KB:8.1f} "
              f"{b['saved'] / KB:7.1f} {b['mask'] / KB:7.1f} {b['gradient'] / KB:8.1f} "
              f"{b['scratch'] / KB:7.1f} {m['flash_bytes'] / KB:8.1f} {r['macs'] / 1e6:6.1f}  {r.get('paper', '')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--momentum", action="store_true", help="count SGD momentum state")
    ap.add_argument("--no-memory-passes", action="store_true",
                    help="plan the graph as imported (no fused pointwise+depthwise / in-place depthwise)")
    args = ap.parse_args()
    passes = not args.no_memory_passes
    if not REF.is_dir():
        sys.exit(f"reference models not found at {REF}")
    for head in (None, args.num_classes):
        rows = []
        for model in MODELS:
            g = load_reference(REF / f"{model}.json")
            if head is not None:
                g = replace_classifier(g, head)
            full, sparse, reorder = PUBLISHED[model]
            for b in BUDGETS[model]:
                r = row(g, str(REF / "schemes" / f"{model}-{b}.json"), f"{model} {b}", args.momentum, passes)
                r["paper"] = f"sparse {sparse} / +reorder {reorder}"
                rows.append(r)
            r = row(g, "full", f"{model} full update", args.momentum, passes)
            r["paper"] = f"full {full}"
            rows.append(r)
        what = "1000-class ImageNet head" if head is None else f"fresh {head}-class head (--num-classes {head})"
        print_table(f"Training memory per step, {what}" + (", with momentum" if args.momentum else "")
                    + ("" if passes else ", no memory passes"), rows)
    a = AUTHORS_MCUNET_49KB
    print(f"\nAuthors' generator, MCUNet-5FPS 49kb (10-class head): total {a['total']} B = activations "
          f"{a['activations']} + scratch {a['scratch']} + trainable {a['trainable']}; flash {a['flash']} B; "
          f"{a['macs'] / 1e6:.1f} MMAC")
    print("total = arena + trainable (trained weights/biases in SRAM + optimizer state); "
          "fwd peak = arena of the forward pass alone (dominated by the 64x64 early layers)")


if __name__ == "__main__":
    main()
