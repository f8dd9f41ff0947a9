"""How well the device learns: held-out accuracy after online learning, int8 on the device vs
the host float32 fine-tune with the same trainable tensors, data order and learning rate.

Two transfer tasks: digits (examples/digits_online: sklearn digits, 0-4 pretrained, 5-9 new)
and keyword spotting (examples/kws: espeak-ng keywords, 6 pretrained, 4 new). For the schemes
`last:1`, `last:2` and the biases of the last two convolutions plus the classifier, every
update mode of int8 parameters is trained on the device's C (the host build of the generated
training step, which equals the emulated Cortex-M4F bit for bit: one row is also run on the
emulated mps2-an386 over the serial link to show it), and the float32 model (Batch norms
folded, the very same tensors trained) on the host build of its float training step.

Each row is the mean over --seeds stream orders (default 10: the same orders for every row);
the acceptance table gives, per task and scheme, the default update mode minus host float32
as the mean of the per-stream (paired) differences with its standard error, beside float32's
own spread over the orders. Keyword spotting is evaluated on 2,000 held-out utterances (200
voice settings per word; the training data and the pretrained model are those of the
example's default data set).

    python bench/bench_learning.py [--tasks digits,kws] [--seeds 10] [--device-row] [--json] [--save FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinytrain.predict import predicted_class

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"digits": ROOT / "examples" / "digits_online" / "ondevice.py", "kws": ROOT / "examples" / "kws" / "ondevice.py"}

BIAS_PLUS_CLASSIFIER = {"name": "bias2+classifier", "bias_update_last_n": 2, "classifier": "full"}
SCHEMES = ("last:1", "last:2", "bias2+classifier")
KWS_TEST_PER_WORD = 200      # held-out utterances per keyword (the example's default: 50)


def quiet():
    """TensorFlow's converter prints its saved signatures on stdout: keep the tables readable."""
    import contextlib
    import io
    return contextlib.redirect_stdout(io.StringIO())


def int8_graph(task):
    from tinytrain.frontends import load_model
    with quiet():
        g = load_model(task.model, quantize="int8", calibration=task.data.x_train[:200])
    g.name = task.model.name
    return g


class Task:
    """A transfer task: a float Keras model pretrained on the old classes, data, a stream."""

    def __init__(self, name: str):
        import importlib.util
        spec = importlib.util.spec_from_file_location(f"{name}_ondevice", EXAMPLES[name])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod          # dataclasses look their module up
        spec.loader.exec_module(mod)
        self.name, self.mod = name, mod
        self.new_classes = mod.NEW_CLASSES
        self.lr, self.epochs = mod.LEARNING_RATE, mod.EPOCHS
        # kws: a larger held-out set; the training split (and so the pretrained model) is the
        # example's own: the data set draws the training voices first
        kw = {"cfg": mod.dataset.Config(test_per_word=KWS_TEST_PER_WORD)} if name == "kws" else {}
        with quiet():
            prepared = mod.prepare(verbose=False, **kw)
        self.data, self.model = prepared.data, prepared.model
        self.xs, self.ys = mod.stream(self.data)

    def groups(self, y):
        new = np.isin(y, self.new_classes)
        return {"all": np.ones(len(y), bool), "new": new, "old": ~new}


def scheme_arg(scheme: str, tmp: Path) -> str:
    if scheme != "bias2+classifier":
        return scheme
    path = tmp / "bias2_classifier.json"
    path.write_text(json.dumps(BIAS_PLUS_CLASSIFIER))
    return str(path)


def accuracies(preds, y, groups) -> dict:
    """Mean over the runs (one per stream order) of the accuracy per group, the spread
    (max - min over the runs) of each, and the runs themselves (for paired differences)."""
    runs = {k: [float(np.mean(p[m] == y[m])) for p in preds] for k, m in groups.items()}
    return {**{k: float(np.mean(v)) for k, v in runs.items()},
            **{f"{k}_spread": max(v) - min(v) for k, v in runs.items()},
            **{f"{k}_runs": v for k, v in runs.items()}}


def paired(r: dict, ref: dict, k: str) -> tuple[float, float]:
    """Mean and standard error (points) of the per-stream differences r - ref in group k."""
    d = 100 * (np.asarray(r[f"{k}_runs"]) - np.asarray(ref[f"{k}_runs"]))
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def train_host(graph, scheme, streams, x_test, lr, epochs, out: Path, **kw):
    """Train the host build of `graph`'s training step on each stream, from the same start
    (parameters rewritten, update state reset, PRNG reseeded): (predictions per stream,
    memory, parameters after the last)."""
    from tinytrain.training.host import HostTrainer
    from tinytrain.training.qas import DEFAULT_UPDATE_SEED
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    preds = []
    with HostTrainer.build(graph, scheme, out, lr=lr, **kw) as ht:
        start = ht.params()
        for xs, ys in streams:
            ht.set_params(start)
            ht.set_update_seed(DEFAULT_UPDATE_SEED)
            for _ in range(epochs):
                ht.train_many(xs.reshape((len(xs),) + shape), ys)
            preds.append(predicted_class(ht.infer(x_test.reshape((len(x_test),) + shape))))
        return preds, ht.compiled.memory, ht.params()


def quantized(graph, x):
    from tinytrain.hostmodel import quantize_input
    t = graph.tensors[graph.inputs[0]]
    return quantize_input(x, t.scale, t.zero_point)


def run_task(task: Task, tmp: Path, modes, seeds: int, schemes=SCHEMES) -> list[dict]:
    from tinytrain.frontends.keras import keras_to_float_graph
    fgraph = keras_to_float_graph(task.model)
    qgraph = int8_graph(task)
    g = task.groups(task.data.y_test)
    streams = [task.mod.stream(task.data, seed) for seed in range(seeds)]
    qstreams = [(quantized(qgraph, xs), ys) for xs, ys in streams]
    rows = []
    for scheme in schemes:
        arg = scheme_arg(scheme, tmp)
        pred, _, _ = train_host(fgraph, arg, streams, task.data.x_test, task.lr, task.epochs,
                                tmp / f"{task.name}-{scheme}-f32")
        rows.append(dict(task=task.name, scheme=scheme, update="host float32", extra_bytes=0,
                         **accuracies(pred, task.data.y_test, g)))
        for mode in modes:
            pred, mem, _ = train_host(qgraph, arg, qstreams, quantized(qgraph, task.data.x_test), task.lr,
                                      task.epochs, tmp / f"{task.name}-{scheme}-{mode}", update=mode)
            rows.append(dict(task=task.name, scheme=scheme, update=mode, extra_bytes=mem["update_state_bytes"],
                             trainable_bytes=mem["trainable_param_bytes"],
                             **accuracies(pred, task.data.y_test, g)))
    return rows


def device_row(task: Task, tmp: Path, mode: str, scheme: str = "last:2") -> dict:
    """The same training on the emulated mps2-an386 over the serial link: its accuracy and
    whether its parameters equal the host build's bit for bit."""
    from tinytrain.emulator import boot
    from tinytrain.link import Link
    from tinytrain.online import evaluate, train_stream
    import tinytrain
    qgraph = int8_graph(task)
    fw = tmp / "fw"
    # compiled as train_host compiles the host build (HostTrainer.build: no memory passes)
    tinytrain.compile(qgraph, scheme=scheme, board="mps2-an386", update=mode, lr=task.lr,
                      passes=False).build_project(fw, force=True)
    xs_q = quantized(qgraph, task.xs).reshape(len(task.xs), -1)
    xt_q = quantized(qgraph, task.data.x_test).reshape(len(task.data.x_test), -1)
    g = task.groups(task.data.y_test)
    with boot(fw) as running, Link.open(running.url) as link:
        train_stream(link, xs_q, task.ys, epochs=task.epochs, chunk=16, shuffle_seed=None,
                     eval_every=len(xs_q) * task.epochs)
        acc = {k: evaluate(link, xt_q[m], task.data.y_test[m]) for k, m in g.items()}
        device = link.read_params()
    _, _, host = train_host(qgraph, scheme, [(quantized(qgraph, task.xs), task.ys)],
                            quantized(qgraph, task.data.x_test), task.lr, task.epochs, tmp / "host-of-device",
                            update=mode)
    equal = all(np.array_equal(device[n].reshape(v.shape), v) for n, v in host.items())
    return dict(task=task.name, scheme=scheme, update=f"{mode} (mps2-an386)", equal_to_host_build=equal, **acc)


def table(rows) -> str:
    head = "| task | scheme | update | all | new | old | extra bytes | trainable bytes |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | `{r['scheme']}` | {r['update']} | {r['all']:.3f} | {r['new']:.3f} | "
                     f"{r['old']:.3f} | {r.get('extra_bytes', '')} | {r.get('trainable_bytes', '')} |")
    return "\n".join(lines)


def acceptance(rows, mode: str) -> str:
    """Per task and scheme: the default mode minus host float32 (points), mean of the paired
    per-stream differences +- its standard error."""
    out = ["| task | scheme | all | new | old | within 1 point | float32's own spread over the stream orders "
           "(all / new / old) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["update"] != mode:
            continue
        ref = next(x for x in rows if x["task"] == r["task"] and x["scheme"] == r["scheme"]
                   and x["update"] == "host float32")
        d = {k: paired(r, ref, k) for k in ("all", "new", "old")}
        # within 1 point either way (the mean of the paired differences); otherwise the groups
        # that miss, and whether 1 point lies within two standard errors of their mean
        miss = [f"{k} {v:+.1f}" + (" (1 within 2 s.e.)" if abs(v) - 2 * e <= 1.0 else "")
                for k, (v, e) in d.items() if abs(v) > 1.0]
        ok = "yes" if not miss else "no: " + ", ".join(miss)
        spread = " / ".join(f"{100 * ref[k + '_spread']:.1f}" for k in ("all", "new", "old"))
        cells = " | ".join(f"{v:+.1f} +- {e:.1f}" for v, e in d.values())
        out.append(f"| {r['task']} | `{r['scheme']}` | {cells} | {ok} | {spread} |")
    return "\n".join(out)


def measure(tasks, modes, seeds: int, with_device_row: bool, schemes=SCHEMES) -> tuple[list, list]:
    from tinytrain.training.qas import DEFAULT_UPDATE
    rows, dev = [], []
    with tempfile.TemporaryDirectory(prefix="tt-bench-learning-") as tmp:
        for name in tasks:
            task = Task(name)
            rows += run_task(task, Path(tmp), modes, seeds, schemes)
            if with_device_row and name == "digits":
                dev.append(device_row(task, Path(tmp), DEFAULT_UPDATE))
    return rows, dev


def main(argv=None) -> int:
    from tinytrain.training.qas import DEFAULT_UPDATE, UPDATE_MODES
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="digits,kws")
    ap.add_argument("--modes", default=",".join(UPDATE_MODES))
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--seeds", type=int, default=10, help="Stream orders averaged over (the same for every row).")
    ap.add_argument("--save", type=Path, default=None, help="Also write the rows (with every run) as JSON here.")
    ap.add_argument("--load", type=Path, nargs="+", default=None,
                    help="Print the tables of rows saved by --save (one file per task run), training nothing.")
    ap.add_argument("--device-row", action="store_true", help="Also run one row on the emulated mps2-an386.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, dev = [], []
    if args.load:
        for f in args.load:
            saved = json.loads(f.read_text())
            rows, dev = rows + saved["rows"], dev + saved["device"]
        args.seeds = len(rows[0]["all_runs"])
    else:
        rows, dev = measure(args.tasks.split(","), args.modes.split(","), args.seeds, args.device_row,
                            args.schemes.split(","))
    if args.save:
        args.save.write_text(json.dumps({"rows": rows, "device": dev}, indent=1) + "\n")
    if args.json:
        print(json.dumps({"rows": rows, "device": dev}, indent=1))
        return 0
    print(f"held-out accuracy after online learning, mean of {args.seeds} stream orders "
          f"({time.perf_counter() - t0:.0f} s); device = the host build of the generated C (bit-identical "
          "to the emulated Cortex-M4F)\n")
    print(table(rows))
    print(f"\ndefault update mode ({DEFAULT_UPDATE}) minus host float32, in points:\n")
    print(acceptance(rows, DEFAULT_UPDATE))
    for d in dev:
        print(f"\non the emulated mps2-an386 over the serial link ({d['task']}, `{d['scheme']}`, {d['update']}): "
              f"all {d['all']:.3f} new {d['new']:.3f} old {d['old']:.3f}; parameters equal to the host build's: "
              f"{d['equal_to_host_build']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
