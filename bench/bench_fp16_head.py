"""An int8 model with a float head (issue 13): how it learns and what it costs, beside the int8
QAS default.

The digits transfer of examples/digits_online (a CNN pretrained on digits 0-4, quantized to
int8; the device learns 5-9 from a stream with a replay of 0-4), trained by the host build of
each training step (the Cortex-M4F's bits: the portable kernels) on the same streams: the int8
step (QAS, the default update), and the int8 model whose head (the layers from the first
trained one on) computes in FP32 (a JSON scheme's "head": "float"), in FP16 and in mixed
precision, the frozen part staying int8. Two schemes: the demo's (the classifier and the last
conv's bias) and `last:2`. Held-out accuracy (mean over the streams) and the training memory
(arena + trainable parameters, which include the update's state: a master copy, shadows) of the plan.

    python bench/bench_fp16_head.py [--streams 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tinytrain.report import format_table  # noqa: E402

DEMO = json.loads((ROOT / "examples" / "digits_online" / "scheme.json").read_text())
SCHEMES = {"demo (classifier + last bias)": DEMO,
           "last:2": {"name": "last2", "layers": ["conv4", "classifier"]}}
VARIANTS = (("int8 (QAS, default update)", "fp32", False), ("int8 + FP32 head", "fp32", True),
            ("int8 + FP16 head", "fp16", False), ("int8 + mixed head", "mixed", False))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=3)
    args = ap.parse_args(argv)
    import bench_learning as bl
    t0 = time.time()
    task = bl.Task("digits")
    qgraph = bl.int8_graph(task)
    groups = task.groups(task.data.y_test)
    streams = [task.mod.stream(task.data, seed) for seed in range(args.streams)]
    qstreams = [(bl.quantized(qgraph, xs), ys) for xs, ys in streams]
    x_test = bl.quantized(qgraph, task.data.x_test)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fp16-head-") as tmp:
        tmp = Path(tmp)
        for sname, spec in SCHEMES.items():
            base = None
            for label, precision, float_head in VARIANTS:
                path = tmp / f"{spec.get('name', 'demo')}-{label.split()[2] if float_head else precision}.json"
                path.write_text(json.dumps(dict(spec, head="float") if float_head else spec))
                pred, mem, _ = bl.train_host(qgraph, str(path), qstreams, x_test, task.lr, task.epochs,
                                             tmp / path.stem, precision=precision)
                acc = bl.accuracies(pred, task.data.y_test, groups)
                total = mem["arena_bytes"] + mem["trainable_param_bytes"]      # the latter holds the update state
                base = base or (acc, total)
                rows.append([sname, label, f"{acc['all']:.3f}", f"{acc['new']:.3f}", f"{acc['old']:.3f}",
                             f"{100 * (acc['all'] - base[0]['all']):+.1f}", f"{mem['arena_bytes']:,}",
                             f"{mem['trainable_param_bytes']:,}", f"{mem.get('update_state_bytes', 0):,}",
                             f"{total:,}", f"{total / base[1]:.2f}"])
    head = ["scheme", "training step", "all", "new", "old", "all - int8 (points)", "arena B",
            "trainable B (with update state)", "of which update state B", "arena + trainable B", "/ int8"]
    print(f"Digits transfer (new classes 5-9), {args.streams} streams, {task.epochs} epochs, lr {task.lr}: "
          "held-out accuracy (host build = Cortex-M4F bits) and training memory")
    print(format_table(head, rows))
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
