"""Board descriptions: boards/<name>.json, one file per board.

A board says what the firmware runs on (core, clock, SRAM and flash and how much of each the
application may use, FPU, SIMD), how PlatformIO builds for it (platform, board id, framework)
and which HAL implementation it uses (`family`: "arduino" for real boards, "cmsdk" for the
QEMU boards, "native" for a host process).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import TinyTrainError
from .resources import boards_dir

FAMILIES = ("arduino", "cmsdk", "native")
SIMD_KINDS = ("none", "dsp", "helium")
_REQUIRED = ("name", "title", "family", "platform", "pio_board", "arch", "core", "clock_hz",
             "sram_bytes", "sram_usable_bytes", "flash_bytes", "flash_usable_bytes", "fpu", "simd",
             "uart", "work_counter", "nv")


class UnknownBoardError(TinyTrainError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown board {name!r}; known boards: {', '.join(known)}")
        self.name = name
        self.known = known


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    family: str                 # HAL family: arduino / cmsdk / native
    platform: str               # PlatformIO platform ("tinytrain" = the local dev-platform)
    pio_board: str              # PlatformIO board id
    framework: str | None       # "arduino" for real boards
    arch: str                   # arm / xtensa / host
    core: str                   # cortex-m4f, cortex-m7, cortex-m55, ...
    cpu_flags: tuple[str, ...]  # gcc flags selecting the core (ARM only)
    clock_hz: int
    sram_bytes: int
    sram_usable_bytes: int      # what the application may use (the fit check's limit)
    flash_bytes: int
    flash_usable_bytes: int
    fpu: str
    simd: str
    uart: dict[str, Any]
    work_counter: str           # the unit of tt_hal_work_count()
    nv: dict[str, Any]          # non-volatile store: kind and bytes
    qemu: dict[str, Any] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def emulated(self) -> bool:
        """Runs here: under QEMU or as a host process."""
        return self.family in ("cmsdk", "native")

    @property
    def nv_bytes(self) -> int:
        return int(self.nv["bytes"])


def _board_from_dict(data: dict[str, Any], source: str) -> Board:
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise TinyTrainError(f"board file {source}: missing field(s) {', '.join(missing)}")
    if data["family"] not in FAMILIES:
        raise TinyTrainError(f"board file {source}: field 'family' must be one of {FAMILIES}")
    if data["simd"] not in SIMD_KINDS:
        raise TinyTrainError(f"board file {source}: field 'simd' must be one of {SIMD_KINDS}")
    notes = {k: v for k, v in data.items() if k.endswith("_note")}
    known = {f for f in Board.__dataclass_fields__ if f != "notes"}
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs.setdefault("framework", None)
    kwargs["cpu_flags"] = tuple(data.get("cpu_flags", ()))
    return Board(notes=notes, **kwargs)


def board_names() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.json"))


def load_board(name: str) -> Board:
    """The board called `name`; UnknownBoardError (listing the known ones) if there is none."""
    path = boards_dir() / f"{name}.json"
    if not path.is_file():
        raise UnknownBoardError(name, board_names())
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TinyTrainError(f"board file {path}: {e}") from None
    return _board_from_dict(data, str(path))


def list_boards() -> list[Board]:
    return [load_board(n) for n in board_names()]


def _kib(n: int) -> str:
    return f"{n // 1024}K" if n < 1024 * 1024 else f"{n / (1024 * 1024):g}M"


def boards_table() -> str:
    """The text `tinytrain boards` prints."""
    rows = [("board", "core", "MHz", "SRAM (usable)", "flash (usable)", "FPU", "SIMD", "runs")]
    for b in list_boards():
        runs = {"cmsdk": "QEMU", "native": "host"}.get(b.family, f"{b.platform}/{b.framework}")
        rows.append((b.name, b.core, str(b.clock_hz // 1_000_000) if b.clock_hz else "-",
                     f"{_kib(b.sram_bytes)} ({_kib(b.sram_usable_bytes)})",
                     f"{_kib(b.flash_bytes)} ({_kib(b.flash_usable_bytes)})", b.fpu, b.simd, runs))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
