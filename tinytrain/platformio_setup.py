"""Make PlatformIO work offline for the emulated boards, idempotently.

PlatformIO needs its `tool-scons` package and the board's dev-platform. Both come from the
repository (firmware/platform/): `tool-scons` runs the pip-installed SCons, and the local
dev-platform `tinytrain` uses Debian's arm-none-eabi-gcc or the host gcc. They are installed
into PlatformIO's core folder (PLATFORMIO_CORE_DIR, default ~/.platformio) as symlinks to
the repository, so nothing is fetched from PlatformIO's registry.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

from .errors import TinyTrainError
from .resources import firmware_dir


def platform_dir() -> Path:
    return firmware_dir() / "platform"


def platform_uri() -> str:
    """What an emitted platformio.ini names as `platform` for the emulated boards."""
    return "symlink://" + str(platform_dir().resolve())


def core_dir() -> Path:
    return Path(os.environ.get("PLATFORMIO_CORE_DIR") or Path.home() / ".platformio")


def pio_command() -> list[str]:
    return [sys.executable, "-m", "platformio"]


def run_pio(args: list[str], *, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PLATFORMIO_NO_ANSI="true", PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="3650",
               PLATFORMIO_SETTING_ENABLE_TELEMETRY="No")
    try:
        return subprocess.run(pio_command() + args, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except FileNotFoundError:
        raise TinyTrainError("PlatformIO is not installed (pip install platformio)") from None


def _linked_to(link_file: Path) -> str | None:
    try:
        return json.loads(link_file.read_text())["spec"]["uri"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _setup_lock():
    """Several builds (pytest-xdist, two shells) may set PlatformIO up at once."""
    core_dir().mkdir(parents=True, exist_ok=True)
    with open(core_dir() / ".tinytrain-setup.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ensure_linked(kind: str, folder: Path, packages: Path) -> bool:
    """Install `folder` as a symlinked package unless it already is; True if it installed."""
    uri = "symlink://" + str(folder.resolve())
    link_file = packages / f"{folder.name}.pio-link"   # PlatformIO's record of a symlinked package
    if _linked_to(link_file) == uri:
        return False
    flag = {"tool": "-t", "platform": "-p"}[kind]
    if link_file.exists():   # linked to another checkout: forget that one
        link_file.unlink()
    proc = run_pio(["pkg", "install", "-g", flag, uri])
    if proc.returncode != 0 or _linked_to(link_file) != uri:
        raise TinyTrainError(f"could not install the local PlatformIO {kind} from {folder}:\n"
                             f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return True


def ensure_platformio() -> dict:
    """Install the local tool-scons and dev-platform if needed. Returns what it did."""
    with _setup_lock():
        scons = _ensure_linked("tool", platform_dir() / "tool-scons", core_dir() / "packages")
        platform = _ensure_linked("platform", platform_dir(), core_dir() / "platforms")
    return {"core_dir": str(core_dir()), "installed_tool_scons": scons, "installed_platform": platform}
