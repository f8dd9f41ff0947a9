"""Output folders that appear whole or not at all.

Everything is written into a hidden temporary sibling and renamed into place at the end,
so a failing build (unsupported op, model too large) leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from .errors import TinyTrainError

MARKER = ".tinytrain.json"


@contextlib.contextmanager
def atomic_output_dir(path: Path, *, force: bool = False, meta: dict | None = None):
    path = Path(path).resolve()
    if path.exists() and not (path / MARKER).exists() and any(path.iterdir()) and not force:
        raise TinyTrainError(f"output folder {str(path)!r} exists and was not made by tinytrain "
                             f"(use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps(meta or {}, indent=1, sort_keys=True))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
