"""Sample files: `.npz` with `x` (and optional `y`), or `.csv` (label in the last column)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import TinyTrainError


def load_samples(path) -> tuple[np.ndarray, np.ndarray | None]:
    path = Path(path)
    if not path.exists():
        raise TinyTrainError(f"data file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        with np.load(path) as z:
            if "x" not in z:
                raise TinyTrainError(f"data file {str(path)!r}: no array named 'x' (has {sorted(z.keys())})")
            x = z["x"]
            y = z["y"].astype(np.int64) if "y" in z else None
    elif path.suffix == ".csv":
        try:
            table = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as exc:
            raise TinyTrainError(f"data file {str(path)!r}: not a numeric CSV ({exc})") from None
        x, y = table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
    else:
        raise TinyTrainError(f"data file {str(path)!r}: expected .npz or .csv")
    if y is not None and len(y) != len(x):
        raise TinyTrainError(f"data file {str(path)!r}: {len(x)} samples but {len(y)} labels")
    return x, y
