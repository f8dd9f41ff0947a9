"""Make PlatformIO build the emulated boards offline, from what a project carries.

A generated project for an emulated board is self-contained (tinytrain.project): it holds
`platform/` (tinytrain's local dev-platform: builder script and the `tool-scons` package that
runs the pip-installed SCons, see firmware/platform/) and `boards/<board>.json` (its board
manifest, generated from boards/*.json); platformio.ini names `platform = file://platform`.
It still builds after the checkout it came from is moved or deleted.

PlatformIO wants `tool-scons` from its registry, which is out of reach here. `ensure_platformio`
copies the project's `tool-scons` into PlatformIO's core folder (PLATFORMIO_CORE_DIR, default
~/.platformio) under the registry's name, and drops an installed `tinytrain` platform whose
files differ from the project's by the project's own (as `pio run` would install it, but under
a lock, so parallel builds never install it at once). Nothing is fetched.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import TinyTrainError
from .resources import firmware_dir

PLATFORM_NAME = "tinytrain"


def platform_dir() -> Path:
    """The dev-platform in this installation (copied into every emulated-board project)."""
    return firmware_dir() / "platform"


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


def tree_hash(folder: Path, skip=(".piopm",)) -> str:
    """A hash of the files of a folder (names and contents), PlatformIO's own records skipped."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name not in skip and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _install_tool_scons(source: Path) -> bool:
    """Copy tool-scons into the core's packages (as the registry package); True if it did."""
    packages = core_dir() / "packages"
    target = packages / "tool-scons"
    link = packages / "tool-scons.pio-link"          # a symlinked install of an older tinytrain
    if target.is_dir() and not link.exists() and tree_hash(target) == tree_hash(source):
        return False
    link.unlink(missing_ok=True)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    packages.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target)
    return True


# PlatformIO's record of a platform installed from `platform = file://platform`.
_PLATFORM_RECORD = {"type": "platform", "name": PLATFORM_NAME, "version": None,
                    "spec": {"owner": None, "id": None, "name": "platform", "requirements": None,
                             "uri": "file://platform"}}


def _install_platform(source: Path) -> bool:
    """Install the project's dev-platform as PlatformIO would for `file://platform`, replacing
    an installed one with other files; True if it did. (Done here, under a lock, so that
    parallel `pio run`s never install it at the same time.)"""
    import json
    platforms = core_dir() / "platforms"
    for link in platforms.glob("*.pio-link"):          # symlinked installs of an older tinytrain
        link.unlink()
    target = platforms / PLATFORM_NAME
    if target.is_dir() and (target / ".piopm").is_file() and tree_hash(target) == tree_hash(source):
        return False
    if target.exists():
        shutil.rmtree(target)
    platforms.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    record = dict(_PLATFORM_RECORD, version=json.loads((source / "platform.json").read_text())["version"])
    (target / ".piopm").write_text(json.dumps(record))
    return True


def ensure_platformio(project_dir: Path) -> dict:
    """Prepare the core folder to build the project in `project_dir` offline (idempotent).
    Returns what it did."""
    platform = Path(project_dir) / "platform"
    if not (platform / "platform.json").is_file():
        raise TinyTrainError(f"{project_dir}: no platform/ folder (not an emulated-board project of "
                             "this tinytrain; rebuild it with `tinytrain build`)")
    with _setup_lock():
        scons = _install_tool_scons(platform / "tool-scons")
        installed = _install_platform(platform)
    return {"core_dir": str(core_dir()), "installed_tool_scons": scons, "installed_platform": installed}
