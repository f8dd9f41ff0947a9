"""Live status of a device port, shared between the process that feeds a device and
`tinytrain monitor`.

A serial port (or QEMU's TCP serial socket) has one owner at a time. The process that
holds it (`tinytrain train`) appends what it reads from the device (statistics, link
counters, the learning curve) as JSON lines to a status file named after the port; a
monitor started while the port is busy follows that file instead of opening the port.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path


def status_dir() -> Path:
    base = Path(os.environ.get("TINYTRAIN_HOME", Path.home() / ".cache" / "tinytrain")) / "ports"
    base.mkdir(parents=True, exist_ok=True)
    return base


def status_path(url: str) -> Path:
    return status_dir() / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".jsonl")


def owner_alive(path: Path) -> bool:
    """True while the process that writes `path` is running."""
    try:
        first = json.loads(path.read_text().splitlines()[0])
        os.kill(int(first["pid"]), 0)
        return True
    except (OSError, ValueError, IndexError, KeyError):
        return False


class StatusWriter:
    """Appends status records for a port; the first line names the owning process."""

    def __init__(self, url: str):
        self.path = status_path(url)
        self._f = open(self.path, "w", buffering=1)
        from .portowner import command_of
        self.write(kind="owner", pid=os.getpid(), url=url, command=command_of(os.getpid()))

    def write(self, **record) -> None:
        record.setdefault("time", time.time())
        self._f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self.write(kind="closed")
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def follow(path: Path, poll: float = 0.5, from_end: bool = False):
    """Yield status records as they are appended, until the owner closes or dies; with
    from_end, only those appended from now on (a live view, not the history)."""
    with open(path) as f:
        if from_end:
            f.seek(0, os.SEEK_END)
        while True:
            line = f.readline()
            if line:
                rec = json.loads(line)
                yield rec
                if rec.get("kind") == "closed":
                    return
                continue
            if not owner_alive(path):
                return
            time.sleep(poll)


def _fmt(value, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)


def stats_line(st: dict, counters: dict, rate: str = "") -> str:
    """One line of a polling `monitor`: the device's counters (GET_STATS) and link counters."""
    acc = st["train_correct"] / st["train_samples"] if st["train_samples"] else float("nan")
    loss = st["train_loss_sum"] / st["train_samples"] if st["train_samples"] else float("nan")
    return (f"steps {st['steps']:>7}  mode {'train' if st['mode'] == 0 else 'eval'}  "
            f"mean loss {loss:.4f}  train acc {acc:.3f}  eval {st['eval_correct']}/{st['eval_samples']}  "
            f"infer {st['infer_count']}  rolled back {st.get('rolled_back', 0)}  "
            f"frames ok {counters['frames_ok']} bad {counters['bad']}" + rate)


def live_lines(records, interval: float = 1.0):
    """The lines `tinytrain monitor` prints while it follows the process that holds the port:
    from a feeder's progress records, at most one line per `interval` seconds of the feeder's
    clock, with the step rate and the mean loss over the samples since the line before; from
    its curve records, one line per held-out evaluation; from the stats records of a polling
    `monitor`, the line that monitor prints (at most one per `interval`), with the step rate
    between the records."""
    last = None                 # (time, steps) of the last progress line
    last_stats = None           # (time, steps) of the last stats line
    loss_sum, loss_count, correct = 0.0, 0, 0
    samples = None
    for rec in records:
        kind = rec.get("kind")
        if kind == "stats" and "stats" in rec and "counters" in rec:
            t, steps = rec.get("time", 0.0), rec["stats"]["steps"]
            if last_stats is not None and t - last_stats[0] < interval:
                continue
            rate = "" if last_stats is None or t <= last_stats[0] else \
                f"  {(steps - last_stats[1]) / (t - last_stats[0]):.1f} steps/s"
            yield stats_line(rec["stats"], rec["counters"], rate)
            last_stats = (t, steps)
        elif kind == "progress":
            t, steps = rec["time"], rec["steps"]
            if last is None:            # the reference point: its samples came before it
                last, samples = (t, steps), rec["samples"]
                continue
            loss_sum += rec.get("loss_sum", 0.0)
            loss_count += rec.get("loss_count", 0)
            correct += rec.get("correct", 0)
            if t - last[0] < interval and rec["samples"] < rec.get("total", float("inf")):
                continue
            rate = (steps - last[1]) / (t - last[0]) if t > last[0] else None
            total = rec.get("total")
            seen = rec["samples"] - samples
            yield (f"samples {rec['samples']:>7}" + (f"/{total}" if total else "") + f"  steps {steps:>7}  "
                   f"{_fmt(rate, '.1f')} steps/s  loss {_fmt(loss_sum / loss_count if loss_count else None, '.4f')}"
                   + (f"  acc {correct / seen:.3f}" if "correct" in rec and seen > 0 else ""))
            last, samples = (t, steps), rec["samples"]
            loss_sum, loss_count, correct = 0.0, 0, 0
        elif kind == "curve" and rec.get("eval_accuracy") is not None:
            ev = rec.get("eval_accuracy")
            yield (f"samples {rec['samples']:>7}  steps {rec['steps']:>7}  held-out {ev:.3f}"
                   + (f"  (interval loss {_fmt(rec.get('loss'), '.4f')}, running acc "
                      f"{_fmt(rec.get('running_accuracy'), '.3f')})" if rec.get("loss") is not None else ""))
