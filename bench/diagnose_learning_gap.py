"""Where the device's int8 online learning departs from the host float32 fine-tune (the
acceptance table of bench_learning.py): measurements of each candidate cause, on one task and
scheme (default: keyword spotting, `last:2`, the default update mode).

1. Saturation during a run (the numpy host simulation, bit for bit the device's C, stream 0):
   how often each masked op output sits on its int8 clamp (the gradient is cut there), how
   many trained int8 weights sit at +-127 before and after, and how many weights of the
   float32 fine-tune end beyond what the int8 per-channel scale can hold (they would be clipped).
2. The step itself: from the same start (the float model given the int8 model's dequantized
   weights), one step on each of 100 samples, int8 (shadow mode: the exact real-valued step)
   against float32: per parameter, the slope of the int8 step on the float step (1: the same
   scaling; QAS, bias quantization) and the relative difference. Also with the ReLU mask taken
   from the pre-activation's sign instead of the rounded int8 output (what a forward that
   wrote the mask from the int32 accumulator would give): how much of the gradient the
   rounding to the zero point cuts.
3. The start point: the float32 fine-tune started from the int8 model's dequantized weights,
   minus the float32 fine-tune (paired per stream order, host builds).
4. (--accuracy-streams N) the held-out accuracy of the int8 run with the pre-activation
   mask (numpy simulation, slow) minus the int8 run as it is, paired over N stream orders.

    python bench/diagnose_learning_gap.py [--task kws] [--scheme last:2] [--streams 10] [--accuracy-streams 0]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_learning as bl  # noqa: E402
from tinytrain.predict import predicted_class  # noqa: E402


def dequantized_float_graph(task, qgraph):
    """The float graph with every weight and bias replaced by the int8 model's, dequantized:
    (graph, {int8 parameter name: (float parameter name, per-element scale)})."""
    from tinytrain.frontends.keras import keras_to_float_graph
    from tinytrain.training import qas
    fgraph = keras_to_float_graph(task.model)

    def weighted(g, dtype=None):
        return [op for op in g.ops if len(op.inputs) >= 3 and g.tensors[op.inputs[1]].is_const
                and (dtype is None or g.tensors[op.inputs[1]].dtype == dtype)]
    names = {}
    for of, oq in zip(weighted(fgraph), weighted(qgraph, "int8"), strict=True):
        for i in (1, 2):
            tf_, tq = fgraph.tensors[of.inputs[i]], qgraph.tensors[oq.inputs[i]]
            s = np.broadcast_to(qas.scales(qgraph, oq, tq.name), tq.data.shape).astype(np.float64)
            if tf_.data.shape != tq.data.shape:
                raise SystemExit(f"{tf_.name} {tf_.data.shape} vs {tq.name} {tq.data.shape}: layouts differ")
            tf_.data = (tq.data.astype(np.float64) * s).astype(np.float32)
            names[tq.name] = (tf_.name, s)
    return fgraph, names


def preactivation_mask_trainer():
    """A numpy Trainer whose ReLU masks of 1x1 convolutions come from the sign of the real
    pre-activation (input and weights dequantized, plus bias) instead of the rounded int8
    output: counts the outputs the rounding to the zero point masks."""
    from tinytrain.ops import unit
    from tinytrain.training.simulate import Trainer

    class PreactivationMask(Trainer):
        cut = active = 0

        def mask(self, op, vals):
            m = super().mask(op, vals)
            if op.type != "conv2d" or self.params[op.inputs[1]].shape[1:3] != (1, 1):
                return m
            x, w, b = self.real(op.inputs[0], vals), self.real(op.inputs[1]), self.real(op.inputs[2])
            pre = np.einsum("nhwi,oi->nhwo", x, w[:, 0, 0, :]) + b
            hi = unit(op.type).clamp(self.g, op)[1]
            got = (pre > 0) & (vals[op.outputs[0]] < hi)
            self.cut += int((got & ~m).sum())
            self.active += int(got.sum())
            return got
    return PreactivationMask


class Counting:
    """Mixin counting, per masked op, outputs on the low and high clamp."""

    def mask(self, op, vals):
        from tinytrain.ops import unit
        m = super().mask(op, vals)
        y = vals[op.outputs[0]]
        lo, hi = unit(op.type).clamp(self.g, op)
        st = self.sat.setdefault(op.name, [0, 0, 0])
        st[0] += int((y <= lo).sum())
        st[1] += int((y >= hi).sum())
        st[2] += y.size
        return m


def saturation(task, qgraph, arg, tmp: Path, mode: str) -> list[str]:
    from tinytrain.training.program import build_program
    from tinytrain.training.simulate import Trainer
    out = []
    xs, ys = task.mod.stream(task.data, 0)
    xs = bl.quantized(qgraph, xs)
    tr = type("CountingTrainer", (Counting, Trainer), {})(build_program(qgraph, arg, update=mode), lr=task.lr)
    tr.sat = {}
    start = {k: v.copy() for k, v in tr.params.items()}
    for _ in range(task.epochs):
        for x, y in zip(xs, ys):
            tr.step(x, int(y))
    out.append("| op output (masked in the backward) | on the low clamp | on the high clamp | outputs |")
    out.append("|---|---|---|---|")
    for name, (lo, hi, n) in tr.sat.items():
        out.append(f"| `{name}` | {lo:,} | {hi:,} | {n:,} |")
    out.append("")
    out.append("| trained int8 weight | at +-127 before | after | elements |")
    out.append("|---|---|---|---|")
    for name, v in tr.params.items():
        if v.dtype == np.int8 and not np.array_equal(v, start[name]):
            out.append(f"| `{name}` | {int((np.abs(start[name].astype(int)) >= 127).sum())} | "
                       f"{int((np.abs(v.astype(int)) >= 127).sum())} | {v.size:,} |")
    # the float32 fine-tune's weights against the int8 range of their channel
    from tinytrain.frontends.keras import keras_to_float_graph
    fgraph = keras_to_float_graph(task.model)
    _, _, pf = bl.train_host(fgraph, arg, [task.mod.stream(task.data, 0)], task.data.x_test, task.lr, task.epochs,
                             tmp / "sat-f32")
    from tinytrain.training.host import HostTrainer
    with HostTrainer.build(qgraph, arg, tmp / "sat-names", lr=task.lr) as ht:
        qnames = list(ht.params())
    out.append("")
    out.append("| float32 fine-tune's weight | beyond the int8 channel's range (would clip) | elements | largest / (127 s) |")
    out.append("|---|---|---|---|")
    for (fname, fv), qname in zip(pf.items(), qnames):
        t = qgraph.tensors[qname]
        if t.dtype != "int8":
            continue
        shape = [1] * fv.ndim
        shape[t.quant.axis] = -1
        ratio = np.abs(fv) / (127 * t.quant.scale.reshape(shape))
        out.append(f"| `{fname}` | {int((ratio > 127.5 / 127).sum())} | {fv.size:,} | {ratio.max():.3f} |")
    return out


def one_step(task, qgraph, arg, n: int = 100) -> list[str]:
    from tinytrain.training.program import build_program
    from tinytrain.training.simulate import Trainer
    fgraph, names = dequantized_float_graph(task, qgraph)
    xs, ys = task.mod.stream(task.data, 0)
    xq = bl.quantized(qgraph, xs)
    pq, pf = build_program(qgraph, arg, update="shadow"), build_program(fgraph, arg)
    out = ["| parameter | ReLU mask from | slope int8 step / float32 step | relative difference |",
           "|---|---|---|---|"]
    notes = []
    for label, cls in (("the int8 output (as built)", Trainer), ("the pre-activation's sign", preactivation_mask_trainer())):
        acc, cut, active = {}, 0, 0
        for i in range(n):
            tq, tf_ = cls(pq, lr=task.lr), Trainer(pf, lr=task.lr)
            q0 = {k: v.copy() for k, v in tq.params.items()}
            f0 = {k: v.copy() for k, v in tf_.params.items()}
            tq.step(xq[i], int(ys[i]))
            tf_.step(xs[i], int(ys[i]))
            cut, active = cut + getattr(tq, "cut", 0), active + getattr(tq, "active", 0)
            for qn, sh in tq.shadow.items():
                fn, s = names[qn]
                dq = (sh.astype(np.float64) - q0[qn].astype(np.float64)) * s
                df = tf_.params[fn].astype(np.float64) - f0[fn]
                a = acc.setdefault(qn, ([], []))
                a[0].append(dq.ravel())
                a[1].append(df.ravel())
        for qn, (dq, df) in acc.items():
            dq, df = np.concatenate(dq), np.concatenate(df)
            out.append(f"| `{qn}` | {label} | {float(dq @ df / (df @ df)):.3f} | "
                       f"{float(np.linalg.norm(dq - df) / np.linalg.norm(df)):.3f} |")
        if active:
            notes.append(f"1x1 conv outputs with a positive pre-activation that round to the zero point "
                         f"(their gradient is cut): {cut:,} of {active:,} ({100 * cut / active:.1f}%)")
    return out + [""] + notes


def start_point(task, qgraph, arg, tmp: Path, streams: int) -> list[str]:
    from tinytrain.frontends.keras import keras_to_float_graph
    fgraph = keras_to_float_graph(task.model)
    dgraph, _ = dequantized_float_graph(task, qgraph)
    ss = [task.mod.stream(task.data, s) for s in range(streams)]
    g = task.groups(task.data.y_test)
    pf, _, _ = bl.train_host(fgraph, arg, ss, task.data.x_test, task.lr, task.epochs, tmp / "sp-f")
    pd, _, _ = bl.train_host(dgraph, arg, ss, task.data.x_test, task.lr, task.epochs, tmp / "sp-d")
    a, b = bl.accuracies(pd, task.data.y_test, g), bl.accuracies(pf, task.data.y_test, g)
    cells = " | ".join("{:+.1f} +- {:.1f}".format(*bl.paired(a, b, k)) for k in ("all", "new", "old"))
    return ["| float32 from the int8 model's weights minus float32 | all | new | old |", "|---|---|---|---|",
            f"| {streams} stream orders | {cells} |"]


def accuracy_effect(task, qgraph, arg, streams: int, mode: str) -> list[str]:
    from tinytrain.training.program import build_program
    from tinytrain.training.simulate import Trainer
    xt = bl.quantized(qgraph, task.data.x_test)
    g = task.groups(task.data.y_test)
    preds = {"as built": [], "pre-activation mask": []}
    for seed in range(streams):
        xs, ys = task.mod.stream(task.data, seed)
        xs = bl.quantized(qgraph, xs)
        for label, cls in (("as built", Trainer), ("pre-activation mask", preactivation_mask_trainer())):
            tr = cls(build_program(qgraph, arg, update=mode), lr=task.lr)
            for _ in range(task.epochs):
                for x, y in zip(xs, ys):
                    tr.step(x, int(y))
            preds[label].append(predicted_class(np.array([tr.infer(x).reshape(-1) for x in xt])))
    a = bl.accuracies(preds["pre-activation mask"], task.data.y_test, g)
    b = bl.accuracies(preds["as built"], task.data.y_test, g)
    cells = " | ".join("{:+.1f} +- {:.1f}".format(*bl.paired(a, b, k)) for k in ("all", "new", "old"))
    return ["| int8 with the pre-activation mask minus int8 as built | all | new | old |", "|---|---|---|---|",
            f"| {streams} stream orders (`{mode}`) | {cells} |"]


def main(argv=None) -> int:
    from tinytrain.training.qas import DEFAULT_UPDATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="kws")
    ap.add_argument("--scheme", default="last:2")
    ap.add_argument("--mode", default=DEFAULT_UPDATE)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--accuracy-streams", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    task = bl.Task(args.task)
    qgraph = bl.int8_graph(task)
    with tempfile.TemporaryDirectory(prefix="tt-learning-gap-") as tmp:
        tmp = Path(tmp)
        arg = bl.scheme_arg(args.scheme, tmp)
        print(f"{args.task}, `{args.scheme}`, update {args.mode}\n")
        for part in (saturation(task, qgraph, arg, tmp, args.mode), one_step(task, qgraph, arg),
                     start_point(task, qgraph, arg, tmp, args.streams)):
            print("\n".join(part) + "\n", flush=True)
        if args.accuracy_streams:
            print("\n".join(accuracy_effect(task, qgraph, arg, args.accuracy_streams, args.mode)) + "\n")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
