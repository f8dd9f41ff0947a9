"""Where the C templates, the firmware runtime and the board files live.

In a source checkout they sit at the repository's top level; in an installed wheel
setup.py has copied them to tinytrain/data/.
"""
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder `templates`, `firmware` or `boards`."""
    for candidate in (_PKG / "data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinytrain resource folder {name!r} not found (broken install?)")


def templates_dir() -> Path:
    return resource_dir("templates")


def firmware_dir() -> Path:
    return resource_dir("firmware")


def boards_dir() -> Path:
    return resource_dir("boards")
