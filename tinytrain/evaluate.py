"""Held-out accuracy, told apart: overall, per named group of classes, per class, and the
confusion matrix (`tinytrain evaluate`, `tinytrain train --eval --groups`).

    groups = parse_groups("old=0-4,new=5-9", num_classes=10)
    s = summarize(y, predicted, num_classes=10, groups=groups)
    print(format_summary(s)); write_confusion_png(s, "confusion.png")

Predictions come from a device (device_predictions: evaluation passes, nothing learned) or
from the host build of a model; the summary is the same either way, so the two can be
compared number for number.
"""
from __future__ import annotations

import numpy as np

from .errors import TinyTrainError
from .predict import predicted_class


def parse_groups(spec: str | None, num_classes: int) -> dict[str, list[int]]:
    """'old=0-4,new=5-9' (ranges, single classes, several joined by '+': 'odd=1+3+5-9')
    -> {"old": [0, 1, 2, 3, 4], "new": [5, ...]}. Classes must lie in [0, num_classes)."""
    if not spec:
        return {}
    groups: dict[str, list[int]] = {}
    for part in spec.split(","):
        name, eq, classes = part.partition("=")
        name = name.strip()
        if not eq or not name or not classes.strip():
            raise TinyTrainError(f"--groups: expected NAME=CLASSES (like old=0-4,new=5-9), got {part.strip()!r}")
        if name in groups:
            raise TinyTrainError(f"--groups: group {name!r} is named twice")
        members: list[int] = []
        for item in classes.split("+"):
            lo, dash, hi = item.strip().partition("-")
            try:
                first, last = int(lo), int(hi if dash else lo)
            except ValueError:
                raise TinyTrainError(f"--groups: group {name!r}: {item.strip()!r} is not a class or a "
                                     "range of classes (like 5 or 5-9)") from None
            if first > last:
                raise TinyTrainError(f"--groups: group {name!r}: empty range {item.strip()!r}")
            for c in range(first, last + 1):
                if not 0 <= c < num_classes:
                    raise TinyTrainError(f"--groups: group {name!r}: class {c} is outside the model's "
                                         f"{num_classes} classes (0-{num_classes - 1})")
                if c not in members:
                    members.append(c)
        groups[name] = members
    return groups


def _ratio(correct: int, samples: int) -> float | None:
    return correct / samples if samples else None


def summarize(y, predicted, num_classes: int, groups: dict[str, list[int]] | None = None) -> dict:
    """The figures of `tinytrain evaluate --json`: accuracy (None where there are no samples),
    groups, per_class, confusion[true][predicted]."""
    y = np.asarray(y, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if y.shape != predicted.shape:
        raise ValueError(f"{len(y)} labels but {len(predicted)} predictions")
    n = max(num_classes, int(y.max(initial=-1)) + 1, int(predicted.max(initial=-1)) + 1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    hit = y == predicted
    per_class = [dict(cls=c, samples=int(confusion[c].sum()), correct=int(confusion[c, c]),
                      accuracy=_ratio(int(confusion[c, c]), int(confusion[c].sum()))) for c in range(n)]
    out_groups = {}
    for name, members in (groups or {}).items():
        mask = np.isin(y, members)
        out_groups[name] = dict(classes=list(members), samples=int(mask.sum()), correct=int(hit[mask].sum()),
                                accuracy=_ratio(int(hit[mask].sum()), int(mask.sum())))
    return dict(samples=int(len(y)), correct=int(hit.sum()), accuracy=_ratio(int(hit.sum()), len(y)),
                groups=out_groups, per_class=per_class, confusion=confusion.tolist())


def _classes_text(members: list[int]) -> str:
    """[0, 1, 2, 3, 4, 7] -> '0-4,7'."""
    runs, start = [], None
    for i, c in enumerate(members):
        if start is None:
            start = c
        if i + 1 == len(members) or members[i + 1] != c + 1:
            runs.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(runs)


def _acc(a: float | None) -> str:
    return "  -  " if a is None else f"{a:.3f}"


def group_line(summary: dict) -> str:
    """'all 0.928, old 0.911, new 0.944': one line (train's progress and summary)."""
    return ", ".join([f"all {_acc(summary['accuracy'])}"]
                     + [f"{name} {_acc(g['accuracy'])}" for name, g in summary["groups"].items()])


def format_summary(summary: dict, confusion: bool = True) -> str:
    lines = [f"accuracy {_acc(summary['accuracy'])}  ({summary['correct']}/{summary['samples']} samples)"]
    if summary["groups"]:
        width = max(len(n) for n in summary["groups"])
        for name, g in summary["groups"].items():
            lines.append(f"  {name:<{width}}  {_acc(g['accuracy'])}  ({g['correct']}/{g['samples']}, "
                         f"classes {_classes_text(g['classes'])})")
    rows = [r for r in summary["per_class"] if r["samples"]]
    lines.append("per class:")
    lines.append("  class  samples  accuracy")
    lines += [f"  {r['cls']:>5}  {r['samples']:>7}  {_acc(r['accuracy']):>8}" for r in rows]
    if confusion:
        m = summary["confusion"]
        width = max(3, len(str(max(max(row) for row in m))) + 1, len(str(len(m) - 1)) + 1)
        lines.append("confusion matrix (rows: true class, columns: predicted):")
        lines.append("  " + " " * 5 + "".join(f"{c:>{width}}" for c in range(len(m))))
        lines += ["  " + f"{t:>5}" + "".join(f"{v:>{width}}" for v in row) for t, row in enumerate(m)]
    return "\n".join(lines)


def write_confusion_png(summary: dict, path, title: str = "") -> None:
    """The confusion matrix as a heat map with counts (matplotlib, the `plot` extra)."""
    try:
        import matplotlib
    except ImportError:
        raise TinyTrainError("--plot needs matplotlib (pip install 'tinytrain[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = np.asarray(summary["confusion"])
    n = len(m)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    ax.imshow(m, cmap="Blues")
    for t in range(n):
        for p in range(n):
            if m[t, p]:
                ax.text(p, t, str(m[t, p]), ha="center", va="center", fontsize=8,
                        color="white" if m[t, p] > m.max() / 2 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title((title + "\n" if title else "") + f"accuracy {_acc(summary['accuracy'])}", fontsize=9)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    import os
    os.replace(tmp, path)


def host_predictions(compiled, x: np.ndarray, params: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The predicted class of every sample from the host build of a compiled model; with
    params (a device's trainable parameters, `weights pull`), from its host training build
    holding those parameters: the host's answer for the weights the device learned."""
    if params is None:
        return predicted_class(compiled.run(x))
    from .hostmodel import quantize_input
    from .ir import NP_DTYPES
    inp = compiled.graph.tensors[compiled.graph.inputs[0]]
    x = np.asarray(x).reshape(len(x), -1)
    if inp.dtype == "int8" and x.dtype != np.int8:
        x = quantize_input(x, inp.scale, inp.zero_point)
    with compiled.host_trainer() as ht:
        ht.set_params(params)
        return predicted_class(ht.infer(x.astype(NP_DTYPES[inp.dtype])))


def device_predictions(link, x: np.ndarray, y: np.ndarray, chunk: int = 64) -> np.ndarray:
    """The device's predicted class of every sample (evaluation passes: nothing is learned)."""
    predicted = []
    for i in range(0, len(x), chunk):
        predicted += [r.predicted for r in link.evaluate(x[i:i + chunk], y[i:i + chunk]).results]
    return np.asarray(predicted, dtype=np.int64)
