"""`tinytrain build --board B`: a model graph -> a complete PlatformIO project, and its build.

An emitted project holds everything it needs:
  platformio.ini               one env for the board
  src/model.* model_data.*     the generated model (tinytrain.cgen)
  src/tt_board.h               board facts for the HAL and the describe reply
  src/tt_device_key.h          the device's secret key (mode 0600; also tt_device.key)
  src/main.c                   the main loop (firmware/runtime/main.c)
  src/tinytrain/{include,kernels,runtime,hal,startup}   copies of the C runtime (only the
                               kernel files the model calls)
  ld/<board>.ld                linker script (QEMU boards)
  .tinytrain.json              what was built, the memory plan and the fit table

Before anything is written the memory plan is checked against the board (fit_check); a
model that does not fit raises DoesNotFitError with the table and leaves nothing behind.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import __version__, keystore
from .boards import Board, load_board
from .elfsize import memory_use
from .errors import TinyTrainError
from .outdir import MARKER, atomic_output_dir
from . import cflags
from .platformio_setup import ensure_platformio, platform_dir, run_pio
from .resources import firmware_dir

# Stated reserves of the fit check (the generated model's own figures come from its emission).
STACK_RESERVE_BYTES = 8 * 1024
RUNTIME_SRAM_BYTES = {"cmsdk": 6 * 1024, "arduino": 6 * 1024, "native": 0}   # link buffers, HAL state
CODE_FLASH_BYTES = {"cmsdk": 32 * 1024, "arduino": 96 * 1024, "native": 0}   # runtime + kernels (+ framework)
NV_FILE = "tt_nv.bin"
# C runtime folders a project carries whole; kernels are picked per model, the HAL and
# start-up code per board.
RUNTIME_FOLDERS = ("include", "runtime")


class DoesNotFitError(TinyTrainError):
    """The model's memory plan exceeds the board's SRAM or flash. `.table` says by how much."""

    def __init__(self, board: str, table: str, rows: list[dict]):
        super().__init__(f"the model does not fit on {board}:\n{table}")
        self.board = board
        self.table = table
        self.rows = rows


@dataclass
class FitReport:
    rows: list[dict]          # {"memory", "item", "bytes"} plus one total row per memory
    totals: dict[str, dict]   # memory -> {"used", "limit", "over"}

    @property
    def fits(self) -> bool:
        return all(t["over"] <= 0 for t in self.totals.values())

    def table(self) -> str:
        lines = [f"{'memory':6s}  {'what':34s} {'bytes':>12s}"]
        for mem in ("SRAM", "flash"):
            for r in (r for r in self.rows if r["memory"] == mem):
                lines.append(f"{mem:6s}  {r['item']:34s} {r['bytes']:>12,d}")
            t = self.totals[mem]
            lines.append(f"{mem:6s}  {'total':34s} {t['used']:>12,d}")
            lines.append(f"{mem:6s}  {'board limit (usable)':34s} {t['limit']:>12,d}")
            verdict = f"OVER by {t['over']:,d}" if t["over"] > 0 else f"fits, {-t['over']:,d} free"
            lines.append(f"{mem:6s}  {verdict}")
        return "\n".join(lines)


def fit_check(memory: dict, board: Board) -> FitReport:
    """Compare the memory plan (Compiled.memory) plus the stated reserves with the board."""
    trainable = int(memory.get("trainable_param_bytes", 0))
    rows = [
        dict(memory="SRAM", item="activation arena", bytes=int(memory["arena_bytes"])),
        dict(memory="SRAM", item="trainable parameters + optimizer", bytes=trainable),
        dict(memory="SRAM", item="stack reserve", bytes=STACK_RESERVE_BYTES),
        dict(memory="SRAM", item="runtime buffers (estimate)", bytes=RUNTIME_SRAM_BYTES[board.family]),
        *([dict(memory="SRAM", item="link: spare copy of trainable state", bytes=int(memory["link_spare_bytes"]))]
          if memory.get("link_spare_bytes") else []),
        dict(memory="flash", item="constants (weights, tables)", bytes=int(memory["flash_bytes"])),
        dict(memory="flash", item="code (estimate)", bytes=CODE_FLASH_BYTES[board.family]),
    ]
    totals = {}
    for mem, limit in (("SRAM", board.sram_usable_bytes), ("flash", board.flash_usable_bytes)):
        used = sum(r["bytes"] for r in rows if r["memory"] == mem)
        totals[mem] = dict(used=used, limit=limit, over=used - limit)
    return FitReport(rows, totals)


# --- the files of a project ---------------------------------------------------------------

def env_name(board: Board) -> str:
    return board.name


def board_header(board: Board, memory: dict) -> str:
    """src/tt_board.h: board facts for the HAL and the describe reply."""
    defs = [
        ("TT_BOARD_NAME", f'"{board.name}"'),
        ("TT_FIRMWARE_VERSION", f'"{__version__}"'),
        ("TT_CORE", f'"{board.core}"'),
        ("TT_FPU", f'"{board.fpu}"'),
        ("TT_SIMD", f'"{board.simd}"'),
        (f"TT_SIMD_{board.simd.upper()}", "1"),
        ("TT_CLOCK_HZ", f"{board.clock_hz}u"),
        ("TT_SRAM_BYTES", f"{board.sram_usable_bytes}u"),
        ("TT_FLASH_BYTES", f"{board.flash_usable_bytes}u"),
        ("TT_STACK_RESERVE_BYTES", f"{STACK_RESERVE_BYTES}u"),
        ("TT_PLAN_SRAM_BYTES", f"{int(memory.get('total_sram_bytes', memory['arena_bytes']))}u"),
        ("TT_PLAN_FLASH_BYTES", f"{int(memory['flash_bytes'])}u"),
        ("TT_NV_BYTES", f"{board.nv_bytes}u"),
        ("TT_NV_FILE", f'"{NV_FILE}"'),
        ("TT_WORK_UNIT", f'"{board.work_counter}"'),
        # The link's RAM copy of the trainable state (exact rollback of a non-finite step,
        # staging of weight pushes); 0 where it does not fit: pushes stage in NV instead.
        ("TT_LINK_SPARE", "1" if memory.get("link_spare_bytes") else "0"),
    ]
    if board.family == "cmsdk":
        # SysTick ticks -> instructions under QEMU -icount shift=10 (1024 ns per instruction).
        ratio = Fraction(10**9, board.clock_hz * 1024)
        if "uart_rx_irq" in board.qemu:   # receive by interrupt: requests arrive during a step
            defs.append(("TT_UART_RX_IRQ", f"{int(board.qemu['uart_rx_irq'])}u"))
        defs += [("TT_UART_BASE", f"{board.qemu['uart_base']}u"),
                 ("TT_WORK_TICKS_NUM", f"{ratio.numerator}u"),
                 ("TT_WORK_TICKS_DEN", f"{ratio.denominator}u")]
    if board.family == "arduino":
        defs.append(("TT_BAUD", f"{board.uart.get('baud', 115200)}"))
    body = "\n".join(f"#define {name:24s} {value}" for name, value in defs)
    return (f"/* tt_board.h - generated by tinytrain {__version__} for board {board.name}. */\n"
            f"#ifndef TT_BOARD_H\n#define TT_BOARD_H\n\n{body}\n\n#endif\n")


def platformio_ini(board: Board) -> str:
    include = "-I src -I src/tinytrain/include -I src/tinytrain/runtime -I src/tinytrain/hal"
    lines = [f"; generated by tinytrain {__version__}: `pio run` builds the firmware",
             f"[env:{env_name(board)}]"]
    if board.emulated:
        # The project carries its dev-platform and board manifest (self-contained, offline).
        lines += ["platform = file://platform", f"board = {board.pio_board}",
                  f"build_flags = {include} {' '.join(cflags.firmware())}"]
    else:
        # The framework owns main(): hal_arduino.cpp calls the main loop from setup()/loop().
        lines += [f"platform = {board.platform}", f"board = {board.pio_board}",
                  f"framework = {board.framework}",
                  f"build_flags = {include} -DTT_NO_MAIN {' '.join(cflags.firmware())}",
                  f"monitor_speed = {board.uart.get('baud', 115200)}"]
    return "\n".join(lines) + "\n"


def board_manifest(board: Board) -> dict:
    """The PlatformIO board manifest of an emulated board (boards/<pio_board>.json in the
    project), generated from its board file: tinytrain's dev-platform builds from it."""
    build = {"tt_kind": "qemu" if board.family == "cmsdk" else "native", "cpu": board.core,
             "mcu": board.name, "f_cpu": f"{board.clock_hz}L"}
    if board.family == "cmsdk":
        build.update(cpu_flags=" ".join(board.cpu_flags), ldscript=board.qemu["ldscript"])
    return {"name": board.title, "vendor": "tinytrain", "url": "https://github.com/", "frameworks": [],
            "build": build, "debug": {},
            "upload": {"maximum_ram_size": board.sram_bytes, "maximum_size": board.flash_bytes,
                       "protocol": "qemu" if board.family == "cmsdk" else "native"}}


def _copy_platform(board: Board, project: Path) -> None:
    shutil.copytree(platform_dir(), project / "platform", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "boards").mkdir()
    (project / "boards" / f"{board.pio_board}.json").write_text(json.dumps(board_manifest(board), indent=1))


def _hal_sources(board: Board) -> list[Path]:
    hal = firmware_dir() / "hal"
    impl = {"cmsdk": "hal_cmsdk.c", "native": "hal_native.c", "arduino": "hal_arduino.cpp"}[board.family]
    return [hal / "tt_hal.h", hal / impl]


def _copy_runtime(board: Board, src: Path, kernel_files) -> None:
    dest = src / "tinytrain"
    ignore = shutil.ignore_patterns("main.c", "*.o", "__pycache__")
    for sub in RUNTIME_FOLDERS:
        if (firmware_dir() / sub).is_dir():
            shutil.copytree(firmware_dir() / sub, dest / sub, ignore=ignore)
    kernels = firmware_dir() / "kernels"
    for path in kernel_files:
        target = dest / "kernels" / Path(path).relative_to(kernels)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (dest / "hal").mkdir(parents=True)
    for path in _hal_sources(board):
        shutil.copy(path, dest / "hal" / path.name)
    shutil.copy(firmware_dir() / "runtime" / "main.c", src / "main.c")
    if board.family == "cmsdk":
        (dest / "startup").mkdir()
        shutil.copy(firmware_dir() / "startup" / board.qemu["startup"], dest / "startup")


def _linker_script(board: Board) -> str:
    text = (firmware_dir() / "startup" / board.qemu["ldscript"]).read_text()
    text, n = re.subn(r"^__tt_stack_size = \d+;", f"__tt_stack_size = {STACK_RESERVE_BYTES};", text,
                      flags=re.M)
    assert n == 1, "linker script lost its __tt_stack_size line"
    return text


def emit_project(compiled, out_dir, *, force: bool = False, reads: str = "open") -> dict:
    """Write a PlatformIO project of a compiled model (tinytrain.compile) for its board into
    out_dir (atomically).

    Raises DoesNotFitError (with the table) if the memory plan exceeds the board; then
    out_dir is left as it was (the check runs before anything is written). The project gets
    its device key (tinytrain.keystore; a rebuild keeps the key), also stored on this host;
    reads="closed" makes the device answer reads only in an authenticated session."""
    board = compiled.board
    graph = compiled.graph
    out_dir = Path(out_dir)
    memory = compiled.memory
    report = fit_check(memory, board)
    if not report.fits:
        raise DoesNotFitError(board.name, report.table(), report.rows)
    if compiled.trainable:
        # The link's spare copy of the trainable state where it fits (exact rollback of a
        # non-finite step, RAM staging of pushes); a board without room stages in NV.
        with_spare = dict(memory, link_spare_bytes=int(memory.get("trainable_param_bytes", 0)))
        if fit_check(with_spare, board).fits:
            memory, report = with_spare, fit_check(with_spare, board)
    meta: dict = dict(board=board.name, model=graph.name, env=env_name(board), family=board.family,
                      tinytrain_version=__version__)
    with atomic_output_dir(out_dir, force=force, meta=meta) as tmp:
        src = tmp / "src"
        compiled.write_c(src)
        key_id = keystore.provision_project(tmp, previous=out_dir if out_dir.is_dir() else None, reads=reads)
        _copy_runtime(board, src, compiled.kernel_files())
        (src / "tt_board.h").write_text(board_header(board, memory))
        (tmp / "platformio.ini").write_text(platformio_ini(board))
        if board.emulated:
            _copy_platform(board, tmp)
        if board.family == "cmsdk":
            (tmp / "ld").mkdir()
            (tmp / "ld" / board.qemu["ldscript"]).write_text(_linker_script(board))
        # Weights a device saved live in the project folder (emulated boards): a rebuild
        # must not lose them. The firmware only loads a store made for its own model hash.
        if (out_dir / NV_FILE).is_file():
            shutil.copy2(out_dir / NV_FILE, tmp / NV_FILE)
        meta.update(model_hash=compiled.model_hash, macs=compiled.macs, memory=memory,
                    fit=dict(rows=report.rows, totals=report.totals), train=compiled.trainable,
                    scheme=compiled.scheme_text, key_id=key_id.hex(), reads=reads,
                    **_training_manifest(compiled))
    return dict(meta, output=str(out_dir.resolve()), fit_table=report.table())


def _training_manifest(compiled) -> dict:
    """What the host knows of a training build and the device may not report (`describe`)."""
    prog = compiled.program
    if prog is None:
        return {}
    return dict(lr=float(compiled.lr), momentum=float(compiled.momentum_value), update=prog.update,
                update_seed=prog.update_seed, update_state_bytes=compiled.memory.get("update_state_bytes"))


# --- building ------------------------------------------------------------------------------

def read_manifest(out_dir) -> dict:
    path = Path(out_dir) / MARKER
    if not path.is_file():
        raise TinyTrainError(f"{str(out_dir)!r} is not a project made by `tinytrain build --board`")
    meta = json.loads(path.read_text())
    if "board" not in meta or "env" not in meta:
        raise TinyTrainError(f"{str(out_dir)!r} was not built for a board (no board in {MARKER})")
    return meta


def firmware_path(out_dir) -> Path:
    """Where `pio run` puts the firmware of the project in out_dir."""
    meta = read_manifest(out_dir)
    name = {"cmsdk": "firmware.elf", "native": "program"}.get(meta["family"], "firmware.elf")
    return Path(out_dir).resolve() / ".pio" / "build" / meta["env"] / name


def build_project(out_dir) -> dict:
    """`pio run` in out_dir; returns the ELF path and its real SRAM/flash use against the board."""
    out_dir = Path(out_dir).resolve()
    meta = read_manifest(out_dir)
    board = load_board(meta["board"])
    if board.emulated:
        ensure_platformio(out_dir)
    proc = run_pio(["run", "-d", str(out_dir)], cwd=out_dir)
    if proc.returncode != 0:
        raise TinyTrainError(f"pio run failed in {out_dir}:\n{(proc.stdout + proc.stderr)[-4000:]}")
    elf = firmware_path(out_dir)
    use = memory_use(elf)
    return dict(elf=str(elf), board=board.name, sections=use["sections"],
                sram_bytes=use["sram_bytes"], sram_limit=board.sram_usable_bytes,
                flash_bytes=use["flash_bytes"], flash_limit=board.flash_usable_bytes)


def size_report(result: dict) -> str:
    """The lines `tinytrain build` prints after a build."""
    def pct(a, b):
        return f"{100.0 * a / b:5.1f}%" if b else "  -  "
    return (f"SRAM  {result['sram_bytes']:>10,d} of {result['sram_limit']:>10,d} B "
            f"({pct(result['sram_bytes'], result['sram_limit'])})\n"
            f"flash {result['flash_bytes']:>10,d} of {result['flash_limit']:>10,d} B "
            f"({pct(result['flash_bytes'], result['flash_limit'])})")
