"""Host backups of a device's trainable parameters (`tinytrain weights pull|push`).

The file is an .npz of the parameters by name plus the model hash and a CRC-32 of the
concatenated bytes, written atomically; a push refuses a file made for another model, and
values a parameter's type cannot hold (naming the parameter).
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import TinyTrainError


def pull(link, path: Path) -> dict:
    d = link.describe()
    params = link.read_params()
    blob = b"".join(np.ascontiguousarray(v).tobytes() for v in params.values())
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **{f"param/{k}": v for k, v in params.items()},
                 model_hash=np.array(d.model_hash), crc32=np.array(zlib.crc32(blob), dtype=np.uint32),
                 order=np.array(list(params)))
    os.replace(tmp, path)
    return dict(params=len(params), bytes=len(blob), model_hash=d.model_hash)


def read(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(model hash, {name: array}) of a weights file, its CRC checked."""
    try:
        with np.load(path) as z:
            model_hash = str(z["model_hash"])
            crc = int(z["crc32"])
            order = [str(n) for n in z["order"]]
            params = {n: z[f"param/{n}"] for n in order}
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise TinyTrainError(f"{path}: not a tinytrain weights file ({exc})") from None
    if zlib.crc32(b"".join(np.ascontiguousarray(params[n]).tobytes() for n in order)) != crc:
        raise TinyTrainError(f"{path}: CRC mismatch, the file is damaged")
    return model_hash, params


def push(link, path: Path) -> dict:
    """Checks the file (CRC, model, every value against its parameter's type) before the
    device sees a byte, then writes it as one transaction (Link.write_weights)."""
    try:
        with np.load(path) as z:
            model_hash = str(z["model_hash"])
            crc = int(z["crc32"])
            order = [str(n) for n in z["order"]]
            params = {n: z[f"param/{n}"] for n in order}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise TinyTrainError(f"{path}: not a tinytrain weights file ({exc})") from None
    blob = b"".join(np.ascontiguousarray(params[n]).tobytes() for n in order)
    if zlib.crc32(blob) != crc:
        raise TinyTrainError(f"{path}: CRC mismatch, the file is damaged")
    d = link.describe()
    if d.model_hash != model_hash:
        raise TinyTrainError(f"{path} holds weights of model {model_hash}, the device runs {d.model_hash}")
    try:
        device_blob = link.params_blob(params)
    except TinyTrainError as exc:
        raise TinyTrainError(f"{path}: {exc}") from None
    info = link.write_weights(device_blob)
    return dict(params=len(params), bytes=len(device_blob), staging="nv" if info.staging == 1 else "ram",
                generation=info.generation)
