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
        self.write(kind="owner", pid=os.getpid(), url=url)

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


def follow(path: Path, poll: float = 0.5):
    """Yield status records as they are appended, until the owner closes or dies."""
    with open(path) as f:
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
