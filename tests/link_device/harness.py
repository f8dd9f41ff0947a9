"""Builds and runs the link tests' device under test.

The device is a fixture-provided object with `.url` (a pyserial URL), `.restart()` and
`.stop()`. Today it is `HostDevice`: the real runtime link code (firmware/runtime/tt_link.c,
tt_cobs.c, tt_crc.c, tt_weights_store.c) with the hand-written test model and a host HAL
on a TCP socket. A native or QEMU firmware build can provide the same three members.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RUNTIME = ROOT / "firmware" / "runtime"
INCLUDES = [RUNTIME, ROOT / "firmware" / "hal", ROOT / "firmware" / "include", HERE]
# The runtime as a project carries it (firmware/runtime/*.c), without its main loop.
LINK_SOURCES = sorted(p for p in RUNTIME.glob("*.c") if p.name != "main.c")
from conftest import LINK_TEST_KEY as TEST_KEY  # noqa: E402  (the key tt_device_key.h compiles in)
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-ffp-contract=off"]


def _gcc() -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler (gcc) for the link test device")
    return cc


def _compile(sources, out: Path, defines=()) -> Path:
    cmd = [_gcc(), *CFLAGS, *defines, *[f"-I{i}" for i in INCLUDES], *map(str, sources),
           "-o", str(out), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def build_host_device(out_dir: Path, *, infer_only: bool = False, defines=(), name: str | None = None,
                      flags=()) -> Path:
    """The link test device; `defines` (-DX=Y) select variants, `name` names the binary."""
    defs = ["-DTT_TEST_INFER_ONLY"] if infer_only else []
    name = name or ("link_device_infer" if infer_only else "link_device")
    sources = LINK_SOURCES + [HERE / "model.c", HERE / "main.c", HERE / "host_hal.c"]
    return _compile(sources, out_dir / name, [*defs, *defines, *flags])


def build_cobs_tool(out_dir: Path) -> Path:
    return _compile([RUNTIME / "tt_cobs.c", RUNTIME / "tt_crc.c", RUNTIME / "tt_sha256.c", HERE / "cobs_tool.c"],
                    out_dir / "cobs_tool")


class HostDevice:
    """The test device as a host process listening on a TCP port (socket:// URL)."""

    def __init__(self, binary: Path, nv_path: Path | None = None, nv_bytes: int = 4096):
        self.binary = binary
        self.nv_path = nv_path
        self.nv_bytes = nv_bytes
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self, **env) -> "HostDevice":
        e = dict(os.environ, TT_LINK_PORT="0", TT_NV_BYTES=str(self.nv_bytes))
        if self.nv_path is not None:
            e["TT_NV_PATH"] = str(self.nv_path)
        e.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([str(self.binary)], stdout=subprocess.PIPE, env=e, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"link test device did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def wait_exit(self, timeout: float = 5.0) -> int:
        self.exit_code = self.proc.wait(timeout=timeout)
        return self.exit_code

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    def restart(self, **env) -> "HostDevice":
        self.stop()
        time.sleep(0.01)
        return self.start(**env)


@pytest.fixture(scope="session")
def link_build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("link_build")


@pytest.fixture(scope="session")
def device_binary(link_build_dir) -> Path:
    return build_host_device(link_build_dir)


@pytest.fixture
def link_device(device_binary, tmp_path):
    """A fresh trainable device with an empty 4 KiB NV store."""
    dev = HostDevice(device_binary, tmp_path / "nv.bin").start()
    yield dev
    dev.stop()
