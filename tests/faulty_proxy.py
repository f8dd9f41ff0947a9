"""A TCP proxy that damages the tinytrain serial protocol's frames, for the link tests.

It forwards whole frames (cut at the 0x00 delimiters) in both directions and, with
probability `rate` per frame and a seeded RNG per direction, applies one fault:

  corrupt    flip bits of 1-3 bytes (never to 0x00: the frame stays one frame)
  truncate   cut off the frame's tail
  inner_dup  repeat a run of the frame's own bytes inside it
  oversize   insert more non-zero garbage than the largest valid frame
  drop       the frame disappears
  duplicate  the frame is sent twice

The first four make exactly one invalid frame each (counted in `damaged`), so a test can
require the receiver to have detected every one. `drop` and `duplicate` leave valid
frames the protocol must handle by sequence number.

  forge      (only when asked for) change a payload byte and fix the CRC, as an attacker on
             the line would: only an authentication tag can tell. Applied to frames of an
             authenticated session (not HELLO / AUTH, not BUSY or short error notices);
             counted in `forge` only when applied.

    proxy = FaultyProxy(("127.0.0.1", device_port), rate=0.05, seed=1)
    cut = FaultyProxy(("127.0.0.1", device_port), rate=0, cut_after=(0x0F, 3))   # the link dies
                                              # after the 3rd WEIGHTS_WRITE frame to the device
    url = f"socket://127.0.0.1:{proxy.port}"; ...; proxy.stop()

Run as a script to put it in front of a device by hand:
    python tests/faulty_proxy.py DEVICE_PORT [--rate 0.02] [--seed 0] [--listen PORT]
"""
from __future__ import annotations

import argparse
import random
import struct
import zlib
import select
import socket
import threading
from collections import Counter

DAMAGING = ("corrupt", "truncate", "inner_dup", "oversize")
ALL_FAULTS = DAMAGING + ("drop", "duplicate")


class _Direction:
    def __init__(self, name: str, seed: int, rate: float, faults: tuple[str, ...], oversize: int,
                 cut_after: tuple[int, int] | None = None):
        self.name = name
        self.cut_after = cut_after       # (frame type, n): forward n frames of that type, then nothing
        self.cut = False
        self.cut_with: _Direction | None = None   # the other direction, whose cut is ours too
        self.rng = random.Random(seed)
        self.rate = rate
        self.faults = faults
        self.oversize = oversize
        self.buf = bytearray()
        self.stats: Counter[str] = Counter()

    def process(self, data: bytes) -> bytes:
        """Returns what to forward for the received bytes (only complete frames)."""
        self.buf += data
        out = bytearray()
        while True:
            end = self.buf.find(b"\x00")
            if end < 0:
                return bytes(out)
            frame = bytes(self.buf[:end])
            del self.buf[:end + 1]
            if not frame:
                out += b"\x00"
                continue
            if self.cut or (self.cut_with is not None and self.cut_with.cut):
                self.stats["cut"] += 1
                continue
            self.stats["frames"] += 1
            out += self._fault(frame)
            if self.cut_after is not None and self._frame_type(frame) == self.cut_after[0]:
                self.stats["cut_type_seen"] += 1
                self.cut = self.stats["cut_type_seen"] >= self.cut_after[1]

    @staticmethod
    def _frame_type(frame: bytes) -> int | None:
        import sys
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tinytrain import cobs
        try:
            body = cobs.decode(frame)
        except cobs.CobsError:
            return None
        return body[1] if len(body) > 1 else None

    def _forge(self, frame: bytes) -> bytes | None:
        """The frame with one payload byte changed and its CRC fixed, or None if not eligible."""
        import sys
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tinytrain import cobs
        try:
            body = bytearray(cobs.decode(frame))
        except cobs.CobsError:
            return None
        if len(body) < 10 + 5 or body[1] & 0x7F in (0x01, 0x14) or body[1] in (0xFE,):
            return None                          # HELLO / AUTH, BUSY, short notices
        i = self.rng.randrange(6, len(body) - 4 - 16)   # payload, not the tag itself
        body[i] ^= 1 << self.rng.randrange(8)
        body[-4:] = struct.pack("<I", zlib.crc32(bytes(body[:-4])))
        return cobs.encode(bytes(body))

    def _fault(self, frame: bytes) -> bytes:
        rng = self.rng
        if rng.random() >= self.rate:
            return frame + b"\x00"
        kind = rng.choice(self.faults)
        if kind == "forge":
            forged = self._forge(frame)
            if forged is None:
                return frame + b"\x00"
            self.stats["forge"] += 1
            return forged + b"\x00"
        self.stats[kind] += 1
        if kind in DAMAGING:
            self.stats["damaged"] += 1
        f = bytearray(frame)
        if kind == "corrupt":
            for i in rng.sample(range(len(f)), min(len(f), rng.randint(1, 3))):
                new = f[i]
                while new == f[i]:
                    new = rng.randrange(1, 256)             # never 0x00
                f[i] = new
        elif kind == "truncate":
            del f[rng.randrange(1, len(f)) if len(f) > 1 else 0:]
            if not f:
                f = bytearray(b"\x01\x01")     # a frame too short to be valid
        elif kind == "inner_dup":
            i = rng.randrange(len(f))
            n = rng.randint(1, 8)
            f[i:i] = f[i:i + n] if f[i:i + n] else b"\x07"
        elif kind == "oversize":
            garbage = bytes(rng.randrange(1, 256) for _ in range(self.oversize))
            i = rng.randrange(len(f) + 1)
            f[i:i] = garbage
        elif kind == "drop":
            return b""
        elif kind == "duplicate":
            return bytes(f) + b"\x00" + bytes(f) + b"\x00"
        return bytes(f) + b"\x00"


class FaultyProxy:
    """Listens on 127.0.0.1 (port 0: any free one), one client at a time, each connection
    forwarded to `upstream`. `stats["to_device"]`, `stats["to_host"]` count frames and faults."""

    def __init__(self, upstream: tuple[str, int], *, rate: float = 0.02, seed: int = 0,
                 faults: tuple[str, ...] = ALL_FAULTS, oversize: int = 2048, listen_port: int = 0,
                 cut_after: tuple[int, int] | None = None):
        self.upstream = upstream
        self.to_device = _Direction("to_device", seed * 2 + 1, rate, faults, oversize, cut_after)
        self.to_host = _Direction("to_host", seed * 2 + 2, rate, faults, oversize)
        if cut_after is not None:
            self.to_host.cut_after = None
            self.to_host.cut_with = self.to_device      # replies die with the requests
        self._listen = socket.socket()
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", listen_port))
        self._listen.listen(1)
        self.port = self._listen.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def stats(self) -> dict[str, Counter]:
        return {"to_device": self.to_device.stats, "to_host": self.to_host.stats}

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listen.close()

    def __enter__(self) -> "FaultyProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listen], [], [], 0.05)
            if not ready:
                continue
            client, _ = self._listen.accept()
            try:
                device = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for s in (client, device):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._forward(client, device)
            client.close()
            device.close()

    def _forward(self, client: socket.socket, device: socket.socket) -> None:
        route = {client: (device, self.to_device), device: (client, self.to_host)}
        while not self._stop.is_set():
            ready, _, _ = select.select([client, device], [], [], 0.05)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                dst, direction = route[s]
                out = direction.process(data)
                if out:
                    dst.sendall(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("device_port", type=int)
    ap.add_argument("--rate", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--listen", type=int, default=0)
    a = ap.parse_args()
    proxy = FaultyProxy(("127.0.0.1", a.device_port), rate=a.rate, seed=a.seed, listen_port=a.listen)
    print(f"listening on {proxy.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        proxy.stop()
        print(dict(proxy.stats))


if __name__ == "__main__":
    main()
