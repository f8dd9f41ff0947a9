"""Who holds a device port: the process id and command line of the tinytrain process that
has it open, for the messages of a command that cannot open it.

Two records can say so, both named after the port URL in $TINYTRAIN_HOME/ports: the port
lock a Link holds while open (tinytrain.portlock, where the link has one) and the status
file a `train` or `monitor` publishes (tinytrain.status). A holder whose process is gone
holds nothing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def command_of(pid: int) -> str:
    """The command line of a running process ('' when it cannot be read)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    return " ".join(a.decode("utf-8", "replace") for a in args)[:160]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def holder(url: str) -> dict | None:
    """{"pid", "command"} of the process that holds the port at url, or None."""
    try:
        from .portlock import owner as lock_owner      # the link's exclusive port lock, where present
    except ImportError:
        lock_owner = None
    if lock_owner is not None:
        found = lock_owner(url)
        if found and found.get("pid"):
            return dict(pid=int(found["pid"]), command=found.get("command") or command_of(int(found["pid"])))
    from .status import status_path
    path = status_path(url)
    try:
        with open(path) as f:
            first = json.loads(f.readline())
        pid = int(first["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not _alive(pid):
        return None
    if first.get("command") and command_of(pid) not in ("", first["command"]):
        return None                       # the pid was reused by another program
    with open(path) as f:                 # a holder that closed the port holds it no more
        if any('"kind": "closed"' in line for line in f):
            return None
    return dict(pid=pid, command=first.get("command") or command_of(pid))


def holder_text(h: dict) -> str:
    return f"PID {h['pid']}" + (f" ({h['command']})" if h.get("command") else "")
