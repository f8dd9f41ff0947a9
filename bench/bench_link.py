"""Online learning over the serial link: samples per second trained, what limits it, and the
share of the bytes on the wire that is protocol.

Builds the example's training firmware (examples/digits_online: int8 CNN, sparse scheme)
for each emulated board, streams the example's training samples (authenticated session,
batched TRAIN requests, pipelined) and prints one table row per board:

  samples/s      achieved: samples trained per second of wall time
  link capacity  samples/s the link alone can carry: frames of the same size as the TRAIN
                 requests (ECHO requests the device refuses at once, after checking their tag)
  step rate      samples/s of the device's training step alone: the time between each TRAIN
                 request's BUSY notice and its reply (the device computing), one at a time
  limited by     the smaller of the two
  protocol share of wire bytes: 1 - (sample + label + result bytes) / wire bytes, where a
                 sample is its input bytes, a label 4 bytes, a result 9 (loss, prediction,
                 correct), as in earlier versions of this bench

Run: python bench/bench_link.py [--boards mps2-an386,native] [--samples 400]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "digits_online"))

import ondevice  # noqa: E402
from tinytrain import protocol as P  # noqa: E402
from tinytrain.emulator import boot  # noqa: E402
from tinytrain.link import Link  # noqa: E402
from tinytrain.report import format_table  # noqa: E402


class CountingPort:
    """A pyserial port that counts the bytes crossing it."""

    def __init__(self, port):
        self._port = port
        self.sent = self.received = 0

    def write(self, data):
        self.sent += len(data)
        return self._port.write(data)

    def read(self, n=1):
        data = self._port.read(n)
        self.received += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name in ("_port", "sent", "received"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


class TimedLink(Link):
    """Notes when each BUSY notice and each reply arrives (by seq)."""

    def __init__(self, *args, **kwargs):
        self.busy_at, self.reply_at = {}, {}
        super().__init__(*args, **kwargs)

    def _on_received(self, item):
        now = time.perf_counter()
        if not isinstance(item, P.FrameError):
            try:
                f = P.parse_frame(item)
                (self.busy_at if f.type == P.BUSY else self.reply_at).setdefault(f.seq, now)
            except P.FrameError:
                pass
        super()._on_received(item)


def link_capacity(link, frame_payload: int, samples_per_frame: int, n: int = 60) -> float:
    """Samples/s the link carries in frames of the TRAIN requests' size: ECHO requests too
    long to echo, which the device refuses after its frame and tag checks."""
    payload = bytes(range(256)) * (frame_payload // 256 + 1)
    t0 = time.perf_counter()
    reqs = [link.submit(P.ECHO, payload[:frame_payload]) for _ in range(n)]
    for r in reqs:
        try:
            link.wait(r)
        except Exception:               # the expected refusal (bad_length)
            pass
    return n * samples_per_frame / (time.perf_counter() - t0)


def step_rate(link, xs, ys, batches: int = 8) -> float:
    """Samples/s of the training step alone: BUSY-to-reply time of TRAIN requests sent one
    at a time (both notices travel the same way, so the line's latency cancels out)."""
    batch = link.batch_size()
    window, link.window = link.window, 1
    link.poll_interval = 0.001
    computing, samples = 0.0, 0
    for i in range(batches):
        chunk = slice(i * batch, (i + 1) * batch)
        seq = link._next_seq
        link.train_many(xs[chunk], ys[chunk])
        computing += link.reply_at[seq] - link.busy_at[seq]
        samples += len(ys[chunk])
    link.window, link.poll_interval = window, 0.01
    return samples / computing


def measure(board: str, prepared, n_samples: int, window: int) -> dict:
    import serial
    with tempfile.TemporaryDirectory() as tmp:
        compiled, _ = ondevice.compile_training(prepared.model, prepared.data, Path(tmp) / "fw", board)
        _, xs, ys = ondevice.device_inputs(compiled.graph, prepared.data)
        xs, ys = xs[:n_samples], ys[:n_samples]
        with boot(Path(tmp) / "fw") as running:
            port = CountingPort(serial.serial_for_url(running.url, baudrate=115200, timeout=0))
            # timeout 2 s: on a loaded machine QEMU can stall for a while, and the
            # retransmissions that would cause are the machine's, not the protocol's.
            with TimedLink(port, window=window, timeout=2.0) as link:
                desc = link.describe()
                link.set_hparams(ondevice.LEARNING_RATE)
                link.train_many(xs[:8], ys[:8])            # warm up: the first bytes can stall
                batch = link.batch_size()
                rate = step_rate(link, xs, ys)
                frame_payload = 2 + batch * (4 + desc.input_bytes)
                capacity = link_capacity(link, frame_payload, batch)
                port.sent = port.received = 0
                t0 = time.perf_counter()
                results = link.train_many(xs, ys)
                seconds = time.perf_counter() - t0
    useful = len(xs) * (desc.input_size + 4) + len(results) * 9
    wire = port.sent + port.received
    return dict(board=board, samples=len(results), seconds=seconds, per_second=len(results) / seconds,
                capacity=capacity, step_rate=rate, batch=batch,
                wire_bytes=wire, useful_bytes=useful, overhead=1 - useful / wire,
                work_per_step=sum(r.work for r in results) / len(results), work_unit=desc.work_unit)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", default="mps2-an386,mps3-an547,native")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--window", type=int, default=4, help="Requests in flight.")
    args = ap.parse_args()
    prepared = ondevice.prepare(verbose=False)
    rows = [measure(b, prepared, args.samples, args.window) for b in args.boards.split(",")]
    print(format_table(
        ["board", "samples", "per frame", "samples/s", "link capacity", "step rate", "limited by", "wire bytes",
         "sample+result bytes", "protocol share", "work per step"],
        [[r["board"], r["samples"], r["batch"], f"{r['per_second']:.1f}", f"{r['capacity']:.1f}",
          f"{r['step_rate']:.1f}", "step" if r["step_rate"] < r["capacity"] else "link",
          f"{r['wire_bytes']:,}", f"{r['useful_bytes']:,}", f"{100 * r['overhead']:.1f}%",
          f"{r['work_per_step']:,.0f} {r['work_unit']}"] for r in rows]))


if __name__ == "__main__":
    main()
