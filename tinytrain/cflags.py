"""The one set of C compiler flags: the host build, the tests and the PlatformIO projects
(through their generated platformio.ini) all take them from here.

-ffp-contract=off: no fused multiply-add where the C says a*b+c, so the host build and every
device compute the same floats (kernels that fuse on purpose use intrinsics and say so).
"""
from __future__ import annotations

STANDARD = ["-std=c99", "-O2", "-ffp-contract=off"]
HOST_VECTORIZE = ["-fvect-cost-model=cheap"]
WARNINGS = ["-Wall", "-Wextra"]
STRICT = WARNINGS + ["-Werror"]              # a warning fails a host build or a test
SECTIONS = ["-ffunction-sections", "-fdata-sections"]   # firmware: the linker drops what is unused


def host() -> list[str]:
    """The host gcc: the reference build of the generated C (tinytrain.hostbuild) and tests."""
    return STANDARD + HOST_VECTORIZE + STRICT


def firmware() -> list[str]:
    """Every firmware build (platformio.ini build_flags; the board adds its core flags)."""
    return STANDARD + WARNINGS + SECTIONS


def cross(board) -> list[str]:
    """A strict cross-compile for a board's core (tests of the generated C)."""
    return list(board.cpu_flags) + STANDARD + STRICT
