"""Compile generated model C with the host gcc and run it: the reference host build.

Used by `tinytrain run`, the tests and the benchmarks. Builds are cached by a hash of
every source file, so repeated runs of the same model do not recompile.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import TinyTrainError
from .resources import firmware_dir

from . import cflags

C_FLAGS = cflags.host()


def kernel_sources() -> list[Path]:
    """Every kernel file (a model needs only some: Compiled.kernel_files())."""
    return sorted((firmware_dir() / "kernels").rglob("*.c"))


def include_dirs() -> list[Path]:
    return [firmware_dir() / "include"]


def _cache_dir() -> Path:
    base = Path(os.environ.get("TINYTRAIN_CACHE", Path(tempfile.gettempdir()) / "tinytrain-cache"))
    base.mkdir(parents=True, exist_ok=True)
    return base


def compile_host(model_dir: Path, main_source: Path | None = None, *, kernels=None, extra_sources=(),
                 extra_flags=(), cc: str = "gcc", cached: bool = True) -> Path:
    """Build model_dir/*.c + the kernel files (`kernels`, default all) + main into an
    executable; return its path (cached by a hash of every source unless cached=False,
    e.g. to time the compile)."""
    model_dir = Path(model_dir)
    main_source = main_source or firmware_dir() / "host" / "tt_batch_main.c"
    kernels = kernel_sources() if kernels is None else [Path(k) for k in kernels]
    sources = sorted(model_dir.glob("*.c")) + kernels + [Path(main_source)] + [Path(p) for p in extra_sources]
    headers = sorted(model_dir.glob("*.h")) + sorted((firmware_dir() / "include").glob("*.h"))
    h = hashlib.sha256()
    for p in sources + headers:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(" ".join([cc, *C_FLAGS, *extra_flags]).encode())
    exe = _cache_dir() / f"model-{h.hexdigest()[:20]}"
    if cached and exe.exists():
        return exe
    tmp = exe.with_suffix(f".tmp{os.getpid()}")
    cmd = [cc, *C_FLAGS, *extra_flags, *[f"-I{d}" for d in [model_dir, *include_dirs()]],
           *map(str, sources), "-lm", "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinyTrainError(f"host compile failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
    shutil.move(tmp, exe)
    return exe


def run_batch(exe: Path, inputs: np.ndarray, input_dtype, output_dtype, output_size: int) -> np.ndarray:
    """Feed a batch of samples through the batch runner; returns (batch, output_size)."""
    data = np.ascontiguousarray(inputs, dtype=input_dtype)
    proc = subprocess.run([str(exe)], input=data.tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise TinyTrainError(f"host model run failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    out = np.frombuffer(proc.stdout, dtype=output_dtype)
    return out.reshape(len(data), output_size)


def check_host_runnable(compiled) -> None:
    """A compiled model's C must run on the host: the Helium (_mve) kernels of a model
    compiled for a Cortex-M55 board do not exist there (the _dsp ones do, in portable C)."""
    mve = sorted(f for f in compiled.emission.em.functions if f.endswith("_mve"))
    if mve:
        raise TinyTrainError(f"model {compiled.graph.name!r} was compiled for {compiled.board.name} and calls "
                             f"Helium kernels ({', '.join(mve[:3])}{', ...' if len(mve) > 3 else ''}), which the "
                             "host cannot run: compile it for board='native' to run it on the host (the "
                             "kernels give the same bytes)")

