"""What `tinytrain train` shows while it runs, on stderr.

On a terminal: one progress bar redrawn in place (samples, percent, the mean loss since the
last redraw, running accuracy, held-out accuracy, samples/s, time left). Anywhere else (a
log file, a CI job, a pipe): a few plain lines, at most one per tenth of the run plus the
last, each with the mean loss and running accuracy of the samples since the line before.
Either way the loss shown is a mean over an interval of samples, never one sample's.
"""
from __future__ import annotations

import sys
import time

BAR_WIDTH = 28
REDRAW_SECONDS = 0.2        # a terminal bar is redrawn at most this often
LINES = 10                  # lines in a log: at most one per 1/LINES of the run


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None or value != value else format(value, spec)


class Progress:
    """Feed it train_stream's progress dicts (update), then close() it."""

    def __init__(self, total: int, *, file=None, tty: bool | None = None, label: str = "training"):
        self.file = file if file is not None else sys.stderr
        self.tty = self.file.isatty() if tty is None else tty
        self.total = max(total, 1)
        self.label = label
        self.samples = 0
        self.held_out: str | None = None
        self.t0 = time.monotonic()
        self._since = self._fresh()
        self._next_line = max(self.total // LINES, 1)
        self._last_draw = 0.0
        self._drawn = False

    @staticmethod
    def _fresh() -> dict:
        return dict(loss_sum=0.0, loss_count=0, correct=0, samples=0)

    def update(self, p: dict) -> None:
        s = self._since
        s["loss_sum"] += p.get("loss_sum", 0.0)
        s["loss_count"] += p.get("loss_count", 0)
        s["correct"] += p.get("correct", 0)
        s["samples"] += p["samples"] - self.samples
        self.samples = p["samples"]
        # what the last held-out evaluation said: "0.912", or "all 0.91, new 0.88, old 0.94"
        if p.get("row") is not None or self.held_out is None:     # a new evaluation (or the first seen)
            held_out = p.get("held_out") or (_fmt(p["eval_accuracy"]) if p.get("eval_accuracy") is not None
                                             else None)
            if held_out:
                self.held_out = held_out
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= REDRAW_SECONDS or self.samples >= self.total:
                self._draw_bar(now)
        elif self.samples == 0 or self.samples >= min(self._next_line, self.total):
            self._line()

    def _interval(self) -> tuple[float | None, float | None]:
        s = self._since
        loss = s["loss_sum"] / s["loss_count"] if s["loss_count"] else None
        acc = s["correct"] / s["samples"] if s["samples"] else None
        self._since = self._fresh()
        return loss, acc

    def _rate(self) -> float | None:
        dt = time.monotonic() - self.t0
        return self.samples / dt if dt > 0 and self.samples else None

    def _draw_bar(self, now: float) -> None:
        loss, acc = self._interval()
        frac = min(self.samples / self.total, 1.0)
        filled = int(round(frac * BAR_WIDTH))
        rate = self._rate()
        eta = (self.total - self.samples) / rate if rate else None
        text = (f"\r{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.samples}/{self.total} "
                f"{100 * frac:3.0f}%  loss {_fmt(loss)}  acc {_fmt(acc)}"
                + (f"  held-out {self.held_out}" if self.held_out else "")
                + f"  {_fmt(rate, '.1f')}/s" + (f"  {eta:.0f}s left" if eta is not None else ""))
        self.file.write(text + "\x1b[K")          # clear what a longer line left behind
        self.file.flush()
        self._last_draw = now
        self._drawn = True

    def _line(self) -> None:
        loss, acc = self._interval()
        step = max(self.total // LINES, 1)
        self._next_line = (self.samples // step + 1) * step
        if self.samples == 0:
            text = f"{self.label}: {self.total} samples" + (f", held-out before: {self.held_out}"
                                                             if self.held_out else "")
        else:
            text = (f"{self.label}: {self.samples}/{self.total} ({100 * self.samples / self.total:.0f}%)  "
                    f"loss {_fmt(loss)}  acc {_fmt(acc)}"
                    + (f"  held-out {self.held_out}" if self.held_out else "")
                    + f"  {_fmt(self._rate(), '.1f')} samples/s")
        self.file.write(text + "\n")
        self.file.flush()

    def close(self) -> None:
        """Ends the bar's line; in a log, a last line for samples not reported yet (Ctrl-C)."""
        if self.tty and self._drawn:
            self.file.write("\n")
            self.file.flush()
        elif not self.tty and self._since["samples"]:
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
