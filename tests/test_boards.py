"""Boards, the fit check, emitted PlatformIO projects, the HAL's file store, ELF sizes.

Fast: no QEMU here (tests/test_firmware_emulated.py boots the boards)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytrain
from tinytrain import cflags
from tinytrain import boards, elfsize, platformio_setup, project
from tinytrain.errors import TinyTrainError
from tinytrain.ir import Graph, Op, QuantParams, Tensor
from tinytrain.project import board_manifest
from tinytrain.resources import firmware_dir

from conftest import ROOT

REQUIRED = ("disco_f746ng", "nucleo_h743zi", "nano33ble", "pico", "esp32-s3-devkitc-1",
            "mps2-an386", "mps3-an547", "native")
REAL = [b for b in REQUIRED if not boards.load_board(b).emulated]
ARM_REAL = [b for b in REAL if boards.load_board(b).arch == "arm"]


def digits_like_graph(seed=0, channels=4, side=8, name="tiny_digits"):
    """A small int8 conv + fully connected classifier of 8x8 images into 10 classes."""
    rng = np.random.default_rng(seed)
    q = QuantParams.per_tensor
    flat = side * side * channels
    wc = rng.integers(-127, 128, (channels, 3, 3, 1)).astype(np.int8)
    wscale = rng.uniform(0.002, 0.01, channels)
    wf = rng.integers(-127, 128, (10, flat)).astype(np.int8)
    t = {
        "x": Tensor("x", (1, side, side, 1), "int8", q(1 / 16, -128)),
        "conv.w": Tensor("conv.w", wc.shape, "int8", QuantParams(wscale, np.zeros(channels), axis=0), wc),
        "conv.b": Tensor("conv.b", (channels,), "int32",
                         QuantParams(wscale / 16, np.zeros(channels), axis=0),
                         rng.integers(-500, 500, channels).astype(np.int32)),
        "h": Tensor("h", (1, side, side, channels), "int8", q(0.05, -128)),
        "flat": Tensor("flat", (1, flat), "int8", q(0.05, -128)),
        "fc.w": Tensor("fc.w", wf.shape, "int8", QuantParams(np.full(10, 0.004), np.zeros(10), axis=0), wf),
        "fc.b": Tensor("fc.b", (10,), "int32", QuantParams(np.full(10, 0.0002), np.zeros(10), axis=0),
                       rng.integers(-2000, 2000, 10).astype(np.int32)),
        "y": Tensor("y", (1, 10), "int8", q(0.1, 0)),
    }
    ops = [Op("conv", "conv2d", ["x", "conv.w", "conv.b"], ["h"],
              dict(stride=(1, 1), pad=(1, 1, 1, 1), dilation=(1, 1), activation="relu")),
           Op("flatten", "reshape", ["h"], ["flat"]),
           Op("fc", "fully_connected", ["flat", "fc.w", "fc.b"], ["y"], dict(activation="none"))]
    return Graph(name, t, ops, ["x"], ["y"]).validate()


# --- boards ----------------------------------------------------------------------------------

def test_required_boards_exist_and_are_consistent():
    names = boards.board_names()
    for name in REQUIRED:
        assert name in names
    for b in boards.list_boards():
        assert 0 < b.sram_usable_bytes <= b.sram_bytes, b.name
        assert 0 < b.flash_usable_bytes <= b.flash_bytes, b.name
        assert b.nv_bytes > 0, b.name
        if b.family == "cmsdk":
            assert b.qemu["machine"] == b.name and b.qemu["uart_base"].startswith("0x")
        if not b.emulated:
            assert b.framework == "arduino" and b.platform != "tinytrain"
    assert boards.load_board("mps3-an547").simd == "helium"
    assert boards.load_board("disco_f746ng").core == "cortex-m7"


def _ld_regions(text: str) -> dict[str, int]:
    """name -> LENGTH in bytes of the MEMORY regions of a linker script."""
    units = {"": 1, "K": 1024, "M": 1024 * 1024}
    return {m.group(1): int(m.group(2), 0) * units[m.group(3)]
            for m in re.finditer(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*\w+,\s*LENGTH\s*=\s*(\w+?)([KM]?)\s*$",
                                 text, re.M)}


@pytest.mark.parametrize("name", [b.name for b in boards.list_boards() if b.family == "cmsdk"])
def test_qemu_board_limits_are_what_its_linker_script_gives(name):
    """The fit check's usable flash and SRAM are the FLASH and RAM regions the firmware is
    linked into (mps3-an547: the QSPI flash, not the 512 KiB ITCM that holds the vectors)."""
    b = boards.load_board(name)
    regions = _ld_regions((firmware_dir() / "startup" / b.qemu["ldscript"]).read_text())
    assert regions["FLASH"] == b.flash_usable_bytes == b.flash_bytes
    assert regions["RAM"] == b.sram_usable_bytes == b.sram_bytes
    pio = board_manifest(b)  # what a project's boards/<name>.json carries
    assert pio["upload"]["maximum_size"] == b.flash_usable_bytes
    assert pio["upload"]["maximum_ram_size"] == b.sram_usable_bytes


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(boards.UnknownBoardError) as info:
        boards.load_board("arduino_uno_r3")
    assert "arduino_uno_r3" in str(info.value)
    for name in REQUIRED:
        assert name in str(info.value)


def test_boards_table_lists_every_board():
    table = boards.boards_table()
    for name in REQUIRED:
        assert name in table
    assert "helium" in table and "QEMU" in table


def test_board_file_missing_field_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "broken.json").write_text(json.dumps({"name": "broken", "family": "cmsdk"}))
    monkeypatch.setattr(boards, "boards_dir", lambda: tmp_path)
    with pytest.raises(TinyTrainError, match="broken.json: missing field"):
        boards.load_board("broken")


# --- fit check ---------------------------------------------------------------------------------

def test_fit_check_sums_plan_and_reserves():
    b = boards.load_board("pico")
    report = project.fit_check(dict(arena_bytes=200_000, flash_bytes=10_000, trainable_param_bytes=60_000), b)
    sram = report.totals["SRAM"]
    assert sram["used"] == 260_000 + project.STACK_RESERVE_BYTES + project.RUNTIME_SRAM_BYTES["arduino"]
    assert sram["over"] == sram["used"] - b.sram_usable_bytes > 0
    assert not report.fits
    assert f"OVER by {sram['over']:,d}" in report.table()
    assert report.totals["flash"]["over"] < 0


def test_too_large_model_is_refused_and_nothing_is_emitted(tmp_path):
    big = digits_like_graph(side=128, channels=16)     # a 256 KB activation: too much for a Pico
    out = tmp_path / "out"
    with pytest.raises(project.DoesNotFitError) as info:
        tinytrain.compile(big, board="pico").write_project(out)
    assert "OVER by" in info.value.table and "activation arena" in info.value.table
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []              # no temporary folder left either


def test_refused_model_keeps_an_existing_project(tmp_path):
    out = tmp_path / "out"
    tinytrain.compile(digits_like_graph(), board="pico").write_project(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(project.DoesNotFitError):
        tinytrain.compile(digits_like_graph(side=128, channels=16), board="pico").write_project(out, force=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


# --- emitted projects ----------------------------------------------------------------------

def test_emitted_cmsdk_project_layout(tmp_path):
    out = tmp_path / "p"
    result = tinytrain.compile(digits_like_graph(), board="mps3-an547").write_project(out)
    for rel in ("platformio.ini", "src/model.h", "src/model.c", "src/main.c", "src/tt_board.h",
                "src/tinytrain/hal/tt_hal.h", "src/tinytrain/hal/hal_cmsdk.c",
                "src/tinytrain/startup/startup_cmsdk.c", "ld/mps3_an547.ld", ".tinytrain.json"):
        assert (out / rel).is_file(), rel
    assert not (out / "src/tinytrain/hal/hal_native.c").exists()
    assert not (out / "src/tinytrain/runtime/main.c").exists()     # only src/main.c
    header = (out / "src/tt_board.h").read_text()
    assert '#define TT_BOARD_NAME            "mps3-an547"' in header
    assert "TT_UART_BASE             0x49303000u" in header
    # 1e9 / (32 MHz * 1024 ns) = 125/4096 instructions per SysTick tick
    assert "TT_WORK_TICKS_NUM        125u" in header and "TT_WORK_TICKS_DEN        4096u" in header
    ld = (out / "ld/mps3_an547.ld").read_text()
    assert f"__tt_stack_size = {project.STACK_RESERVE_BYTES};" in ld
    meta = json.loads((out / ".tinytrain.json").read_text())
    assert meta["board"] == "mps3-an547" and meta["model_hash"] == digits_like_graph().fingerprint()
    assert result["fit"]["totals"]["SRAM"]["over"] < 0


def _pio_config(project_dir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    proc = platformio_setup.run_pio(["project", "config", "-d", str(project_dir), "--json-output"], timeout=120)
    config = {}
    if proc.returncode == 0:
        for section, options in json.loads(proc.stdout):
            config[section] = dict(options)
    return proc, config


@pytest.mark.parametrize("board", REAL)
def test_real_board_platformio_ini_passes_pio_project_config(tmp_path, board):
    b = boards.load_board(board)
    out = tmp_path / board
    tinytrain.compile(digits_like_graph(), board=board).write_project(out)
    proc, config = _pio_config(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unknown" not in (proc.stdout + proc.stderr).lower()
    env = config[f"env:{board}"]
    assert env["platform"] == b.platform and env["board"] == b.pio_board and env["framework"] == ["arduino"]
    assert "-DTT_NO_MAIN" in " ".join(env["build_flags"])
    assert (out / "src/tinytrain/hal/hal_arduino.cpp").is_file()


def test_pio_project_config_rejects_a_broken_ini(tmp_path):
    """The check above can fail: a misspelt option is reported."""
    (tmp_path / "platformio.ini").write_text("[env:x]\nplatform = ststm32\nbaord = disco_f746ng\n")
    proc, _ = _pio_config(tmp_path)
    assert "baord" in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("board", ARM_REAL)
def test_real_board_c_compiles_for_its_core(tmp_path, board):
    """The generated model, kernels, runtime and main loop compile warning-free for the core
    (the framework and hal_arduino.cpp need PlatformIO's registry, out of reach here)."""
    b = boards.load_board(board)
    out = tmp_path / board
    tinytrain.compile(digits_like_graph(), board=board).write_project(out)
    src = out / "src"
    sources = sorted(p for p in src.rglob("*.c"))
    assert any(p.name == "model.c" for p in sources) and any(p.name == "main.c" for p in sources)
    includes = [f"-I{d}" for d in (src, src / "tinytrain/include", src / "tinytrain/runtime", src / "tinytrain/hal")]
    for source in sources:
        cmd = ["arm-none-eabi-gcc", *cflags.cross(b), "-DTT_NO_MAIN", *includes, "-c", str(source), "-o", str(tmp_path / "x.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{source.name} for {board}:\n{proc.stderr}"


# --- PlatformIO offline setup --------------------------------------------------------------

def test_platformio_setup_is_idempotent_and_replaces_another_platform(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "core"))
    out = tmp_path / "p"
    tinytrain.compile(digits_like_graph(), board="native").write_project(out)
    first = platformio_setup.ensure_platformio(out)
    assert first["installed_tool_scons"] and first["installed_platform"]
    second = platformio_setup.ensure_platformio(out)
    assert not second["installed_tool_scons"] and not second["installed_platform"]
    record = json.loads((tmp_path / "core/platforms/tinytrain/.piopm").read_text())
    assert record["spec"]["uri"] == "file://platform"
    # a project whose dev-platform differs replaces the installed one
    (out / "platform" / "builder" / "main.py").write_text((out / "platform/builder/main.py").read_text() + "\n")
    assert platformio_setup.ensure_platformio(out)["installed_platform"]


def test_project_builds_after_its_checkout_is_deleted(tmp_path, monkeypatch):
    """A project made from a copy of the checkout builds with `pio run` once that copy is gone:
    it carries its dev-platform, board manifest, runtime and kernels."""
    checkout = tmp_path / "checkout"
    for name in ("tinytrain", "firmware", "templates", "boards"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__", ".pio"))
    out = tmp_path / "fw"
    code = ("import sys, tinytrain; sys.path.insert(0, 'tests'); from graphs import mlp; "
            f"tinytrain.compile(mlp(), board='native').write_project({str(out)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(checkout)))
    assert str(checkout) not in (out / "platformio.ini").read_text()
    shutil.rmtree(checkout)
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "core"))
    result = project.build_project(out)
    assert Path(result["elf"]).is_file()


# --- native HAL: the file store --------------------------------------------------------------

NV_TEST_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "tt_hal.h"
#include "tt_board.h"
int main(int argc, char **argv) {
    uint8_t buf[300];
    if (argc > 1 && strcmp(argv[1], "write") == 0) {
        const char msg[] = "learned";
        if (tt_hal_nv_write(200, msg, sizeof msg) != 0) return 10;
        if (tt_hal_nv_write(0, "AB", 2) != 0) return 11;
        return 0;
    }
    if (tt_hal_nv_read(0, buf, sizeof buf) != 0) return 12;
    printf("size=%lu range=%d,%d\n", (unsigned long)tt_hal_nv_size(),
           tt_hal_nv_read(TT_NV_BYTES - 1, buf, 2), tt_hal_nv_write(TT_NV_BYTES, buf, 1));
    for (int i = 0; i < (int)sizeof buf; i++) printf("%02x", buf[i]);
    printf("\n");
    return 0;
}
"""


def test_native_nv_store_reads_erased_writes_durably(tmp_path):
    (tmp_path / "tt_board.h").write_text('#define TT_NV_BYTES 4096u\n#define TT_NV_FILE "nv.bin"\n'
                                         '#define TT_WORK_UNIT "us"\n')
    (tmp_path / "t.c").write_text(NV_TEST_MAIN)
    exe = tmp_path / "t"
    subprocess.run(["gcc", *cflags.host(), f"-I{tmp_path}",
                    f"-I{firmware_dir() / 'hal'}", str(tmp_path / "t.c"),
                    str(firmware_dir() / "hal/hal_native.c"), "-o", str(exe)], check=True)
    fresh = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert fresh[0] == "size=4096" and fresh[1] == "range=-1,-1"
    assert fresh[2] == "ff" * 300                                  # never written: erased
    assert subprocess.run([str(exe), "write"], cwd=tmp_path).returncode == 0
    after = bytes.fromhex(subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True,
                                         check=True).stdout.split()[2])   # a new process: durable
    assert after[:2] == b"AB" and after[2:200] == b"\xff" * 198       # the gap reads erased
    assert after[200:208] == b"learned\0" and after[208:] == b"\xff" * 92
    assert (tmp_path / "nv.bin").stat().st_size == 208


# --- ELF sizes ---------------------------------------------------------------------------------

def _size_tool_sections(tool: str, elf: Path) -> dict:
    out = subprocess.run([tool, "-A", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) == 3 and parts[0] != "Total":
            sections[parts[0]] = int(parts[1])
    return sections


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_elfsize_matches_binutils_on_an_arm_elf(tmp_path):
    (tmp_path / "m.c").write_text("int table[1000] = {1};\nint zeros[300];\nconst char msg[] = \"hi\";\n"
                                  "int main(void) { return table[zeros[0]] + msg[0]; }\n")
    elf = tmp_path / "m.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "--specs=nosys.specs", "-O1",
                    str(tmp_path / "m.c"), "-o", str(elf)], check=True)
    ours = {s.name: s.size for s in elfsize.read_sections(elf)}
    theirs = _size_tool_sections("arm-none-eabi-size", elf)
    for name, size in theirs.items():
        assert ours[name] == size, name
    use = elfsize.memory_use(elf)
    assert use["sram_bytes"] >= 4000 + 1200                     # .data holds table, .bss zeros
    assert use["flash_bytes"] >= 4000 and use["sections"][".data"] >= 4000


def test_elfsize_reads_a_host_elf64():
    exe = Path(sys.executable).resolve()
    sections = {s.name: s.size for s in elfsize.read_sections(exe)}
    assert ".text" in sections and sections[".text"] > 0


def test_elfsize_rejects_a_non_elf(tmp_path):
    (tmp_path / "x").write_bytes(b"not an elf")
    with pytest.raises(TinyTrainError, match="not an ELF"):
        elfsize.read_sections(tmp_path / "x")


def test_dtype_codes_agree_between_python_and_c():
    """tinytrain/dtypes.py is the one table; firmware/include/tt_types.h must say the same."""
    import re
    from tinytrain.dtypes import DTYPES
    header = (firmware_dir() / "include" / "tt_types.h").read_text()
    c = {m.group(1).lower(): int(m.group(2)) for m in re.finditer(r"#define TT_DTYPE_(\w+)\s+(\d+)", header)}
    assert c == {d.c_suffix: d.code for d in DTYPES.values()}
