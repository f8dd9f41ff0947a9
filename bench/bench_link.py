"""Online learning over the serial link: samples per second trained, and the share of the
bytes on the wire that is protocol (framing: COBS, header, CRC, delimiters, and the
message fields that are not sample data or results).

Builds the example's training firmware (examples/digits_online: int8 CNN, sparse scheme)
for each emulated board, streams the example's training samples and prints a table.
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


def measure(board: str, prepared, n_samples: int, window: int) -> dict:
    import serial
    with tempfile.TemporaryDirectory() as tmp:
        graph, program, _ = ondevice.compile_training(prepared.model, prepared.data, Path(tmp) / "fw", board)
        _, xs, ys = ondevice.device_inputs(graph, prepared.data)
        xs, ys = xs[:n_samples], ys[:n_samples]
        with boot(Path(tmp) / "fw") as running:
            port = CountingPort(serial.serial_for_url(running.url, baudrate=115200, timeout=0))
            with Link(port, window=window) as link:
                desc = link.describe()
                link.train_many(xs[:8], ys[:8])            # warm up: the first bytes can stall
                port.sent = port.received = 0
                t0 = time.perf_counter()
                results = link.train_many(xs, ys)
                seconds = time.perf_counter() - t0
    # Useful bytes: the samples and labels sent, and per reply the loss, prediction and
    # correctness flag (9 bytes); everything else on the wire is protocol.
    useful = len(xs) * (desc.input_size + 4) + len(results) * 9
    wire = port.sent + port.received
    return dict(board=board, samples=len(results), seconds=seconds, per_second=len(results) / seconds,
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
        ["board", "samples", "samples/s", "wire bytes", "sample+result bytes", "protocol overhead",
         "work per step"],
        [[r["board"], r["samples"], f"{r['per_second']:.1f}", f"{r['wire_bytes']:,}", f"{r['useful_bytes']:,}",
          f"{100 * r['overhead']:.1f}%", f"{r['work_per_step']:,.0f} {r['work_unit']}"] for r in rows]))


if __name__ == "__main__":
    main()
