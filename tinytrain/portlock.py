"""One client per device port: an advisory lock per port URL, held while a Link is open.

Two processes on one port steal each other's replies (a pty or a serial line delivers each
byte to one reader). `Link.open` takes this lock first; a second client gets "port ... in use
by PID n (command)" instead, and `tinytrain monitor` follows the owner through its status
file (tinytrain.status). The lock is an flock on a file named after the URL next to the
status files, so it dies with its process, whatever way that ends.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

from .errors import TinyTrainError


class PortBusyError(TinyTrainError):
    def __init__(self, url: str, owner: dict):
        pid, cmd = owner.get("pid", "?"), owner.get("command", "")
        super().__init__(f"port {url} in use by PID {pid}" + (f" ({cmd})" if cmd else "")
                         + "; `tinytrain monitor --port URL` can follow it")
        self.url = url
        self.owner = owner


def lock_dir() -> Path:
    base = Path(os.environ.get("TINYTRAIN_HOME", Path.home() / ".cache" / "tinytrain")) / "ports"
    base.mkdir(parents=True, exist_ok=True)
    return base


def lock_path(url: str) -> Path:
    return lock_dir() / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".lock")


def _command() -> str:
    args = [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:4]
    return " ".join(args)[:120]


def owner(url: str) -> dict | None:
    """Who holds the port now ({"pid", "command"}), or None when it is free."""
    path = lock_path(url)
    if not path.exists():
        return None
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            try:
                return json.loads(f.read() or "{}")
            except ValueError:
                return {}
        fcntl.flock(f, fcntl.LOCK_UN)
        return None


class PortLock:
    """Held from acquire() to release(); raises PortBusyError when another process holds it."""

    def __init__(self, url: str):
        self.url = url
        self._f = None

    def acquire(self) -> "PortLock":
        f = open(lock_path(self.url), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            try:
                info = json.loads(f.read() or "{}")
            except ValueError:
                info = {}
            f.close()
            raise PortBusyError(self.url, info) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps(dict(pid=os.getpid(), command=_command(), url=self.url)))
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is not None:
            try:
                self._f.truncate(0)
                fcntl.flock(self._f, fcntl.LOCK_UN)
            finally:
                self._f.close()
                self._f = None
