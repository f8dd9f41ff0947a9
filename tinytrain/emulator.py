"""Boot the emulated boards: QEMU (mps2-an386, mps3-an547) or the native program.

QEMU gets its UART on a loopback TCP socket (`socket://127.0.0.1:PORT`, nodelay, waiting for
the host to connect so no byte is lost); the native program opens a pty and prints its path
(`/dev/pts/N`). Either way the process runs in its own process group, with the project folder
as working directory (so the non-volatile store file lands there), and its output goes to
`.tinytrain-emulator.log` in the project.

`boot()` returns a Running (a context manager): leaving it, or any failure while booting,
kills the process group. With detach=True the process outlives the caller and
`.tinytrain-run.json` records how `stop(out_dir)` finds it.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from .boards import load_board
from .errors import TinyTrainError
from .project import build_project, firmware_path, read_manifest

RUN_RECORD = ".tinytrain-run.json"
LOG_FILE = ".tinytrain-emulator.log"
QEMU = "qemu-system-arm"
ICOUNT_SHIFT = 10          # one instruction = 2^10 ns of virtual time: repeatable work counts

_live: set["Running"] = set()   # not detached: killed at interpreter exit at the latest


class Running:
    """A booted emulated board. `.url` is the serial port URL to open."""

    def __init__(self, out_dir: Path, proc: subprocess.Popen | None, pid: int, url: str, detached: bool):
        self.out_dir = out_dir
        self.proc = proc
        self.pid = pid
        self.url = url
        self.detached = detached

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return _pid_alive(self.pid)

    def stop(self) -> None:
        _kill_group(self.pid, self.proc)
        _live.discard(self)
        record = self.out_dir / RUN_RECORD
        if self.detached and record.exists():
            record.unlink()

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Running(pid={self.pid}, url={self.url!r}, detached={self.detached})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _kill_group(pid: int, proc: subprocess.Popen | None, grace: float = 2.0) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers, reap our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    break
            elif not _pid_alive(pid):
                break
            time.sleep(0.02)
        else:
            continue
        break
    if proc is not None:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


@atexit.register
def _kill_leftovers() -> None:
    for running in list(_live):
        running.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_command(machine: str, elf: Path, port: int, paced: bool = False) -> list[str]:
    """paced: keep virtual time aligned with wall-clock time (about 10^6 instructions per
    second), so that something slow on a real board is slow here too (power-loss tests)."""
    return [QEMU, "-M", machine, "-nographic", "-monitor", "none",
            "-icount", f"shift={ICOUNT_SHIFT}" + (",align=on" if paced else ""),
            "-semihosting-config", "enable=on,target=native",
            "-kernel", str(elf),
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        if proc.poll() is not None:
            raise TinyTrainError(f"the emulator exited with code {proc.returncode} before it was ready:\n"
                                 f"{text[-2000:]}")
        if time.monotonic() > deadline:
            raise TinyTrainError(f"the emulator was not ready after {timeout:.0f} s:\n{text[-2000:]}")
        time.sleep(0.02)


def boot(out_dir, detach: bool = False, *, timeout: float = 20.0, paced: bool = False) -> Running:
    """Start the built firmware of the project in out_dir; return once its port is ready."""
    out_dir = Path(out_dir).resolve()
    meta = read_manifest(out_dir)
    board = load_board(meta["board"])
    if not board.emulated:
        raise TinyTrainError(f"board {board.name!r} is real hardware: use `pio run -t upload` (tinytrain flash)")
    firmware = firmware_path(out_dir)
    if not firmware.exists():
        raise TinyTrainError(f"{firmware} does not exist: build the project first (pio run)")
    stop(out_dir)   # never two instances of one project
    log = out_dir / LOG_FILE
    if board.family == "cmsdk":
        port = free_port()
        cmd = qemu_command(board.qemu["machine"], firmware, port, paced)
        ready = r"waiting for connection"
        url_of = lambda m: f"socket://127.0.0.1:{port}"   # noqa: E731
    else:
        cmd = [str(firmware)]
        ready = r"TT_PTY (\S+)"
        url_of = lambda m: m.group(1)   # noqa: E731
    with open(log, "wb") as log_out:
        try:
            proc = subprocess.Popen(cmd, cwd=out_dir, stdin=subprocess.DEVNULL, stdout=log_out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise TinyTrainError(f"{cmd[0]} is not installed") from None
    running = Running(out_dir, proc, proc.pid, "", detach)
    _live.add(running)
    try:
        running.url = url_of(_wait_for(log, ready, proc, timeout))
        if detach:
            (out_dir / RUN_RECORD).write_text(json.dumps(
                dict(pid=proc.pid, url=running.url, board=board.name, command=cmd), indent=1))
            _remember_project(running.url, out_dir)
            _live.discard(running)
    except BaseException:
        running.stop()
        raise
    return running


def _remember_project(url: str, out_dir: Path) -> None:
    """Which project a detached board's port belongs to (`describe` shows its manifest)."""
    from .status import status_dir
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    (status_dir() / f"{key}.project").write_text(str(out_dir))


def project_of(url: str) -> Path | None:
    """The project whose detached board runs at url (recorded by boot), if it still runs there."""
    from .status import status_dir
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    try:
        out_dir = Path((status_dir() / f"{key}.project").read_text())
        return out_dir if running_url(out_dir) == url else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_ours(pid: int, command: list[str]) -> bool:
    """The recorded pid still runs the recorded program (pids get reused)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return Path(argv0).name == Path(command[0]).name


def stop(out_dir) -> bool:
    """Stop the detached emulator of the project in out_dir; True if one was running."""
    record = Path(out_dir).resolve() / RUN_RECORD
    if not record.exists():
        return False
    try:
        info = json.loads(record.read_text())
        pid, command = int(info["pid"]), list(info["command"])
    except (ValueError, KeyError, TypeError):
        record.unlink()
        return False
    was_running = _pid_alive(pid) and _is_ours(pid, command)
    if was_running:
        _kill_group(pid, None)
    record.unlink()
    return was_running


def running_url(out_dir) -> str | None:
    """The port URL of the detached emulator of out_dir, if one runs."""
    record = Path(out_dir).resolve() / RUN_RECORD
    if not record.exists():
        return None
    info = json.loads(record.read_text())
    return info["url"] if _pid_alive(int(info["pid"])) and _is_ours(int(info["pid"]), info["command"]) else None


def _needs_build(out_dir: Path) -> bool:
    firmware = firmware_path(out_dir)
    if not firmware.exists():
        return True
    built = firmware.stat().st_mtime
    sources = [p for p in (out_dir / "src").rglob("*") if p.is_file()]
    sources += [out_dir / "platformio.ini", *(out_dir / "ld").glob("*.ld")]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def flash(out_dir, *, detach: bool = False) -> dict:
    """`tinytrain flash DIR`: build if needed, then upload (real boards) or boot (emulated).

    For an emulated board the result holds `running` (a Running; the caller stops it unless
    detached) and `url`."""
    out_dir = Path(out_dir).resolve()
    meta = read_manifest(out_dir)
    board = load_board(meta["board"])
    built = build_project(out_dir) if _needs_build(out_dir) else None
    if not board.emulated:
        from .platformio_setup import run_pio
        proc = run_pio(["run", "-d", str(out_dir), "-t", "upload"])
        if proc.returncode != 0:
            raise TinyTrainError(f"upload failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
        return dict(board=board.name, built=built, uploaded=True)
    running = boot(out_dir, detach=detach)
    return dict(board=board.name, built=built, running=running, url=running.url)
