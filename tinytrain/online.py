"""Online learning over the serial link: stream samples to a device, watch it learn.

The loop puts the device in train mode, sends samples in pipelined chunks (tinytrain.link
batches them into TRAIN requests and keeps several in flight), evaluates on held-out data on
the device every `eval_every` samples (evaluation requests never change the device's mode),
and records a learning curve. It fails loudly (DeviceNotLearning) when the device's step
count does not advance as the samples it trained on say it must, or when every step of a
chunk was rolled back (a loss or update that was not finite). Ctrl-C (SIGINT) stops after
the chunk in flight: the device keeps every step it acknowledged, and the curve so far is
still written. The first SIGINT only sets a flag the loop reads between chunks: raised inside
the link, mid-frame or between a sequence number and its request's record, it could leave
requests the host waits for and the device never saw (minutes of retries). A second SIGINT
interrupts at once.
"""
from __future__ import annotations

import csv
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import TinyTrainError

CURVE_FIELDS = ("samples", "steps", "loss", "running_accuracy", "eval_accuracy", "seconds")


class _StopAfterChunk:
    """While entered (in the main thread): the first SIGINT sets `requested`, the second
    raises KeyboardInterrupt as usual. Elsewhere it never asks to stop."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)       # a second Ctrl-C: at once

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler) or signal.default_int_handler
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class Curve:
    rows: list[dict] = field(default_factory=list)

    def add(self, **row) -> dict:
        self.rows.append(row)
        return row

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CURVE_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in self.rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CURVE_FIELDS})

    def write_png(self, path: Path, title: str = "") -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax1 = plt.subplots(figsize=(7, 4))
        trained = [r for r in self.rows if r.get("loss") is not None]      # not the point before training
        ax1.plot([r["samples"] for r in trained], [r["loss"] for r in trained], color="tab:red",
                 label="loss (mean of the interval)")
        ax1.set_xlabel("samples trained")
        ax1.set_ylabel("loss", color="tab:red")
        ax2 = ax1.twinx()
        ax2.plot([r["samples"] for r in trained], [r["running_accuracy"] for r in trained], color="tab:blue",
                 label="running accuracy")
        ev = [(r["samples"], r["eval_accuracy"]) for r in self.rows if r.get("eval_accuracy") is not None]
        if ev:
            ax2.plot(*zip(*ev), "o-", color="tab:green", label="held-out accuracy")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("accuracy")
        fig.legend(loc="lower right")
        ax1.set_title(title or "on-device learning curve")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


class DeviceNotLearning(TinyTrainError):
    """The device acknowledged samples without learning from them."""


@dataclass
class TrainReport:
    samples: int
    steps: int
    seconds: float
    interrupted: bool
    final_eval_accuracy: float | None
    curve: Curve
    correct: int = 0            # samples of this run the device predicted right before its step
    judged: int = 0             # samples whose reply came (an interrupted chunk's did not)
    rolled_back: int = 0        # steps the device undid (loss or update not finite)

    @property
    def running_accuracy(self) -> float | None:
        """Of this run only (the device's own counters cover every run since they were reset)."""
        return self.correct / self.judged if self.judged else None

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def evaluate(link, x: np.ndarray, y: np.ndarray, chunk: int | None = None) -> float:
    """Held-out accuracy on the device (evaluation requests: nothing learned, mode untouched)."""
    chunk = chunk or 8 * max(link.batch_size(), 1)
    correct = 0
    for i in range(0, len(x), chunk):
        correct += link.evaluate(x[i:i + chunk], y[i:i + chunk]).correct
    return correct / len(x)


def train_stream(link, x: np.ndarray, y: np.ndarray, *, eval_x=None, eval_y=None, epochs: int = 1,
                 chunk: int | None = None, eval_every: int | None = None, shuffle_seed: int | None = 0,
                 on_progress: Callable[[dict], None] | None = None,
                 status=None, evaluator: Callable[[], float] | None = None,
                 eval_at_start: bool = False) -> TrainReport:
    """Train on (x, y) for `epochs`, `chunk` samples at a time (default: 8 TRAIN requests'
    worth, so the pipeline stays full; the link batches and pipelines within a chunk).

    shuffle_seed: every epoch goes through the samples in a new order drawn from one
    generator seeded with it; None keeps the order of (x, y). evaluator: what a held-out
    evaluation runs (default: accuracy on eval_x, eval_y); eval_at_start puts an
    evaluation at sample 0, before anything is learned. on_progress gets, after every
    chunk, the mean loss of that chunk and its sums (loss_sum, loss_count, correct)."""
    curve = Curve()
    n = len(x)
    chunk = chunk or 8 * max(link.batch_size(), 1)
    eval_every = eval_every or max(n // 4, chunk)
    done = steps = 0
    window_loss, window_correct, window_n = 0.0, 0, 0
    interrupted = False
    total_correct = judged = 0
    last_eval = None
    if evaluator is None and eval_x is not None:
        evaluator = lambda: evaluate(link, eval_x, eval_y)  # noqa: E731
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    next_eval = eval_every
    rolled_back = 0
    link.set_mode("train")                 # whatever an earlier session left behind
    start_steps = steps = link.stats().steps
    if eval_at_start and evaluator is not None:
        last_eval = evaluator()
        row = curve.add(samples=0, steps=steps, loss=None, running_accuracy=None, eval_accuracy=last_eval,
                        seconds=0.0)
        if status is not None:
            status.write(kind="curve", **row)
        if on_progress:
            on_progress(dict(samples=0, total=n * epochs, steps=steps, loss=None, loss_sum=0.0, loss_count=0,
                             correct=0, eval_accuracy=last_eval, row=row))
    t0 = time.perf_counter()
    with _StopAfterChunk() as stop:
        try:
            for _ in range(epochs):
                order = rng.permutation(n) if rng is not None else np.arange(n)
                for i in range(0, n, chunk):
                    idx = order[i:i + chunk]
                    results = link.train_many(x[idx], y[idx])
                    _check_learning(results, steps)
                    rolled_back += sum(r.rolled_back for r in results)
                    done += len(results)
                    steps = results[-1].steps
                    losses = [r.loss for r in results if not math.isnan(r.loss)]
                    chunk_correct = sum(r.correct for r in results)
                    window_loss += sum(losses)
                    window_correct += chunk_correct
                    total_correct += chunk_correct
                    judged += len(results)
                    window_n += len(results)
                    row = None
                    if done >= next_eval or (done == n * epochs):
                        next_eval += eval_every
                        if evaluator is not None:
                            last_eval = evaluator()
                        row = curve.add(samples=done, steps=steps, loss=window_loss / window_n,
                                        running_accuracy=window_correct / window_n, eval_accuracy=last_eval,
                                        seconds=round(time.perf_counter() - t0, 3))
                        window_loss, window_correct, window_n = 0.0, 0, 0
                    progress = dict(samples=done, total=n * epochs, steps=steps,
                                    loss=sum(losses) / len(losses) if losses else float("nan"),
                                    loss_sum=sum(losses), loss_count=len(losses), correct=chunk_correct,
                                    eval_accuracy=last_eval, row=row)
                    if status is not None and row is not None:
                        status.write(kind="curve", **row)
                    if on_progress:
                        on_progress(progress)
                    if stop.requested:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            # Every request already sent completes; the device's step counter then says how
            # many samples it learned from, the interrupted chunk's included.
            link.drain()
            steps = link.stats().steps
            done = steps - start_steps
    if window_n or (interrupted and (not curve.rows or curve.rows[-1]["samples"] != done)):
        curve.add(samples=done, steps=steps, loss=window_loss / window_n if window_n else float("nan"),
                  running_accuracy=window_correct / window_n if window_n else float("nan"),
                  eval_accuracy=None, seconds=round(time.perf_counter() - t0, 3))
    return TrainReport(done, steps, time.perf_counter() - t0, interrupted, last_eval, curve, total_correct, judged,
                       rolled_back)


def _check_learning(results, steps_before: int) -> None:
    """Every sample trained, or rolled back and counted; the step count says the same."""
    evaluated = sum(r.evaluated for r in results)
    if evaluated:
        raise DeviceNotLearning(f"the device only evaluated {evaluated} of {len(results)} samples "
                                f"(mode {results[-1].mode}: eval): nothing was learned")
    trained = sum(not r.rolled_back for r in results)
    if results[-1].steps - steps_before != trained:
        raise DeviceNotLearning(f"the device's step count went from {steps_before} to {results[-1].steps} "
                                f"over {trained} trained samples: steps are not advancing")
    if trained == 0:
        raise DeviceNotLearning(f"all {len(results)} steps of a chunk were rolled back: their loss or update "
                                "was not finite (is the learning rate too large?)")
