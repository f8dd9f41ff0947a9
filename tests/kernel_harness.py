"""Run single int8 kernels bare-metal on the emulated boards and count their instructions.

One program per call: for each Case it runs the reference kernel and the variant on the same
inputs, compares their outputs byte for byte (and with the host's expected output, if
given), checks that neither wrote past the output, and reports the instructions each took.
The program is built with arm-none-eabi-gcc for the board (its cpu flags, linker script and
start-up code, firmware/hal/hal_cmsdk.c for the UART and the SysTick work counter) and run
under qemu-system-arm -icount shift=10, the project's way of counting (tinytrain.emulator):
every instruction advances virtual time by 1024 ns, SysTick counts that time, so counts are
exact and repeatable (a known loop of 2n instructions measures 2n + 4, the call; on
mps3-an547 the first measurement of a program reads one more). A SysTick wrap (every 2^24
ticks: 655,360 instructions on mps2-an386, 512,000 on mps3-an547) adds its interrupt
handler's 5-10 instructions to what is running.

    case = Case("conv 1x1", out_bytes=y.size, macs=macs, expected=y)
    x_c = case.array("x", x)                      # const data, in flash
    case.ref = f"tt_conv2d_s8({x_c}, {case.dims(x.shape)}, ..., tt_out, ...);"
    case.var = f"tt_conv2d_s8_dsp(..., tt_out, ..., tt_scratch);"
    results = run_cases("mps2-an386", [case, ...])

C statements see `tt_out` (int8_t *, the output buffer) and `tt_scratch` (void *, 16-byte
aligned, as large as the largest case's scratch_bytes); `pre` runs before each of them,
uncounted (e.g. copying the input into tt_out for an in-place kernel). Used by tests/test_kernels_simd.py
(bit-exactness) and bench/bench_kernels.py (the tables).
"""
from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinytrain import kernel_prep
from tinytrain.boards import load_board
from tinytrain.emulator import ICOUNT_SHIFT, QEMU
from tinytrain.project import board_header
from tinytrain.resources import firmware_dir

BOARDS = ("mps2-an386", "mps3-an547")
GUARD_BYTES = 16          # after the output: must still hold the fill pattern
CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
          "-ffunction-sections", "-fdata-sections"]


def have_tools() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which(QEMU) is not None


def kernel_sources() -> list[Path]:
    """The int8 kernels: the reference files and every variant in the per-op folders, forward
    and backward (the float kernels of int8 training: conv2d's input gradient has variants)."""
    kernels = firmware_dir() / "kernels"
    return sorted(kernels.glob("*/*_s8*.c"))


def _c_value(v) -> str:
    if isinstance(v, np.floating):      # exact: a C99 hexadecimal float
        if np.isnan(v):                  # the default quiet NaN (what numpy's nan is), bit for bit
            if np.float32(v).view(np.uint32) != 0x7FC00000:
                raise ValueError(f"a NaN other than 0x7FC00000: {np.float32(v).view(np.uint32):#x}")
            return "__builtin_nanf(\"\")"
        if np.isinf(v):
            return "__builtin_inff()" if v > 0 else "(-__builtin_inff())"
        return float(v).hex() + "f"
    return str(int(v))


def _c_array(ctype: str, name: str, values, const: bool = True, align: int = 16) -> str:
    flat = np.asarray(values).reshape(-1)
    body = ",".join(_c_value(v) for v in flat) if flat.size else "0"
    qual = "static const" if const else "static"
    return f"{qual} {ctype} {name}[{max(flat.size, 1)}] TT_ALIGNED({align}) = {{{body}}};"


_ids = itertools.count()   # C names unique across every case of the process

_CTYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
          np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.uint32): "uint32_t",
          np.dtype(np.float32): "float"}


@dataclass
class Case:
    """One measurement: `ref` and optionally `var`, C statements writing tt_out."""
    name: str
    out_bytes: int
    macs: int = 0
    expected: np.ndarray | None = None
    scratch_bytes: int = 0
    ref: str = ""
    var: str | None = None
    pre: str = ""            # C statements run before each of ref and var, not counted
    decls: list[str] = field(default_factory=list)
    ram_inits: list[tuple[str, str, int]] = field(default_factory=list)   # (ram, const copy, bytes)

    @staticmethod
    def _name(what: str) -> str:
        return f"k{next(_ids)}_{what}"

    def array(self, what: str, a: np.ndarray, ram: bool = False) -> str:
        """A C array holding a (const, in flash); ram=True: a RAM copy restored before every
        run (inputs a kernel may overwrite, e.g. in place)."""
        a = np.ascontiguousarray(a)
        name = self._name(what)
        ctype = _CTYPE[a.dtype]
        if not ram:
            self.decls.append(_c_array(ctype, name, a))
            return name
        self.decls.append(_c_array(ctype, name + "_init", a))
        self.decls.append(f"static {ctype} {name}[{max(a.size, 1)}] TT_ALIGNED(16);")
        self.ram_inits.append((name, name + "_init", a.nbytes))
        return name

    def dims(self, shape) -> str:
        h, w, c = (int(v) for v in tuple(shape)[-3:])
        name = self._name("dims")
        self.decls.append(f"static const tt_dims {name} = {{{h}, {w}, {c}}};")
        return "&" + name

    def geom(self, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1)) -> str:
        name = self._name("geom")
        self.decls.append(f"static const tt_geom {name} = {{{stride[0]}, {stride[1]}, {pad[0]}, {pad[2]}, "
                          f"{dilation[0]}, {dilation[1]}}};")
        return "&" + name

    def requant(self, q: dict) -> str:
        mult = self.array("mult", np.asarray(q["multiplier"], dtype=np.int32))
        shift = self.array("shift", np.asarray(q["shift"], dtype=np.int32))
        name = self._name("rq")
        self.decls.append(f"static const tt_requant {name} = {{{int(q['in_zp'])}, {int(q['out_zp'])}, "
                          f"{int(q['act_min'])}, {int(q['act_max'])}, {mult}, {shift}}};")
        return "&" + name

    def rq_dsp(self, q: dict) -> str:
        table = kernel_prep.requant_dsp(q)
        arr = self.array("rqdsp", table)
        return f"(const tt_rq_dsp *){arr}"


@dataclass
class Result:
    name: str
    macs: int
    ref_instr: int
    var_instr: int | None
    identical: bool | None       # variant output == reference output (None: no variant)
    ref_expected: bool | None    # reference output == the host's expected output (None: not given)
    guards_ok: bool              # neither wrote past out_bytes
    diff_bytes: int = 0          # bytes where the variant's output differs from the reference's

    @property
    def ok(self) -> bool:
        return self.guards_ok and self.identical is not False and self.ref_expected is not False


_MAIN = r"""
#include <stdint.h>
#include <string.h>
#include "tt_types.h"
#include "tt_kernels.h"
#include "tt_kernels_simd.h"
#include "tt_hal.h"

#define OUT_MAX {out_max}
#define GUARD {guard}
static int8_t tt_out_buf[OUT_MAX + GUARD] TT_ALIGNED(16);
static int8_t tt_ref_copy[OUT_MAX + GUARD] TT_ALIGNED(16);
static uint8_t tt_scratch_buf[{scratch_max}] TT_ALIGNED(16) __attribute__((used));
#define tt_out tt_out_buf
#define tt_scratch ((void *)tt_scratch_buf)

/* A loop of exactly 2n instructions (SUBS, BNE), to check the counting. */
static void __attribute__((noinline, used)) tt_known_loop(uint32_t n)
{{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}}

static void put(const char *s)
{{
    tt_hal_uart_write((const uint8_t *)s, strlen(s));
}}

static void put_u(uint32_t v)
{{
    char buf[12];
    int i = 11;
    buf[i] = 0;
    do {{
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    }} while (v);
    put(buf + i);
}}

static void fill(uint8_t pattern, int32_t n)
{{
    memset(tt_out_buf, pattern, (size_t)n + GUARD);
}}

static int guard_ok(uint8_t pattern, int32_t n)
{{
    int32_t i;
    for (i = n; i < n + GUARD; i++)
        if ((uint8_t)tt_out_buf[i] != pattern) return 0;
    return 1;
}}

static void semihost_exit(void)
{{
    register uint32_t r0 __asm__("r0") = 0x18u;         /* SYS_EXIT */
    register uint32_t r1 __asm__("r1") = 0x20026u;      /* ADP_Stopped_ApplicationExit */
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}}

{decls}

{functions}

int main(void)
{{
    uint32_t t0, t1, overhead;
    tt_hal_init();
    tt_known_loop(64u);   /* let SysTick settle */
    t0 = tt_hal_work_count();
    t1 = tt_hal_work_count();
    overhead = t1 - t0;
    put("overhead ");
    put_u(overhead);
    put("\n");
{calls}
    put("done\n");
    semihost_exit();
    for (;;) {{
    }}
}}
"""

_CASE_FN = r"""
static void __attribute__((noinline)) case{i}_setup(uint8_t pattern)
{{
{inits}
    fill(pattern, {out_bytes});
    {pre}
}}
static void __attribute__((noinline)) case{i}_ref(void)
{{
    {ref}
}}
static void __attribute__((noinline)) case{i}_var(void)
{{
    {var}
}}
"""

_CASE_CALL = r"""
    {{
        uint32_t r, v = 0, diff = 0, k;
        int same = 2, exp = 2, guards;
        case{i}_setup(0x5Au);
        t0 = tt_hal_work_count();
        case{i}_ref();
        t1 = tt_hal_work_count();
        r = t1 - t0 - overhead;
        guards = guard_ok(0x5Au, {out_bytes});
        memcpy(tt_ref_copy, tt_out_buf, {out_bytes});
        {expect}
        if ({has_var}) {{
            case{i}_setup(0xA5u);
            t0 = tt_hal_work_count();
            case{i}_var();
            t1 = tt_hal_work_count();
            v = t1 - t0 - overhead;
            guards = guards && guard_ok(0xA5u, {out_bytes});
            for (k = 0; k < {out_bytes}u; k++) diff += tt_ref_copy[k] != tt_out_buf[k];
            same = diff == 0;
        }}
        put("case {i} ");
        put_u(r);
        put(" ");
        put_u(v);
        put(" ");
        put_u((uint32_t)same);
        put(" ");
        put_u((uint32_t)exp);
        put(" ");
        put_u((uint32_t)guards);
        put(" ");
        put_u(diff);
        put("\n");
    }}
"""


def program_source(cases: list[Case]) -> str:
    decls, functions, calls = [], [], []
    for i, case in enumerate(cases):
        decls.extend(case.decls)
        inits = "\n".join(f"    memcpy({ram}, {init}, {n});" for ram, init, n in case.ram_inits)
        functions.append(_CASE_FN.format(i=i, inits=inits, out_bytes=case.out_bytes, ref=case.ref,
                                         var=case.var or "/* no variant */", pre=case.pre))
        expect = "(void)0;"
        if case.expected is not None:
            exp = np.ascontiguousarray(case.expected)
            exp = (exp.view(np.int8) if exp.dtype == np.float32 else exp.astype(np.int8)).reshape(-1)
            if exp.size != case.out_bytes:
                raise ValueError(f"case {case.name}: expected has {exp.size} bytes, out_bytes {case.out_bytes}")
            name = f"c{i}_expected"
            decls.append(_c_array("int8_t", name, exp))
            expect = f"exp = memcmp(tt_ref_copy, {name}, {case.out_bytes}) == 0;"
        calls.append(_CASE_CALL.format(i=i, out_bytes=case.out_bytes, expect=expect,
                                       has_var=1 if case.var else 0))
    return _MAIN.format(out_max=max([c.out_bytes for c in cases] + [1]), guard=GUARD_BYTES,
                        scratch_max=max([c.scratch_bytes for c in cases] + [16]),
                        decls="\n".join(decls), functions="\n".join(functions), calls="\n".join(calls))


def build(board_name: str, cases: list[Case], build_dir: Path, kernels=None, opt: str = "-O2") -> Path:
    """Compile the program for the board (with `kernels`, default every int8 kernel source;
    `opt` the optimisation flag); returns the ELF."""
    board = load_board(board_name)
    if board.family != "cmsdk":
        raise ValueError(f"{board_name} is not an emulated Cortex-M board")
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "tt_board.h").write_text(board_header(board, dict(arena_bytes=0, flash_bytes=0)))
    (build_dir / "harness_main.c").write_text(program_source(cases))
    fw = firmware_dir()
    sources = [build_dir / "harness_main.c", fw / "startup" / board.qemu["startup"],
               fw / "hal" / "hal_cmsdk.c", *(kernel_sources() if kernels is None else kernels)]
    elf = build_dir / "harness.elf"
    cflags = [opt if f == "-O2" else f for f in CFLAGS]
    cmd = ["arm-none-eabi-gcc", *board.cpu_flags, *cflags, f"-I{build_dir}", f"-I{fw / 'include'}",
           f"-I{fw / 'hal'}", *map(str, sources), "-o", str(elf),
           "-Wl,--gc-sections", f"-Wl,-T,{fw / 'startup' / board.qemu['ldscript']}",
           "--specs=nano.specs", "--specs=nosys.specs", "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"building the kernel harness for {board_name} failed:\n{res.stderr[-6000:]}")
    return elf


def run_elf(board_name: str, elf: Path, timeout: float = 600.0) -> str:
    board = load_board(board_name)
    cmd = [QEMU, "-M", board.qemu["machine"], "-display", "none", "-monitor", "none",
           "-icount", f"shift={ICOUNT_SHIFT}", "-semihosting-config", "enable=on,target=native",
           "-serial", "stdio", "-kernel", str(elf)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if res.returncode != 0 or "done" not in res.stdout:
        raise RuntimeError(f"the kernel harness on {board_name} failed (exit {res.returncode}):\n"
                           f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout


def parse(cases: list[Case], text: str) -> list[Result]:
    results = []
    for m in re.finditer(r"^case (\d+) (\d+) (\d+) (\d) (\d) (\d) (\d+)$", text, re.M):
        i, r, v, same, exp, guards, diff = (int(g) for g in m.groups())
        case = cases[i]
        results.append(Result(case.name, case.macs, r, v if case.var else None,
                              None if same == 2 else bool(same), None if exp == 2 else bool(exp),
                              bool(guards), diff))
    if len(results) != len(cases):
        raise RuntimeError(f"the kernel harness reported {len(results)} of {len(cases)} cases:\n{text[-3000:]}")
    return results


def diff_note(r: Result) -> str:
    """' (n bytes differ)' for a failed comparison, '' otherwise (for messages)."""
    return f" ({r.diff_bytes} bytes differ)" if r.identical is False else ""


def run_cases(board_name: str, cases: list[Case], build_dir=None, opt: str = "-O2", kernels=None) -> list[Result]:
    """Build and run one program holding every case; results in the cases' order (`kernels`:
    the kernel sources, default every int8 forward kernel)."""
    if build_dir is not None:
        return parse(cases, run_elf(board_name, build(board_name, cases, Path(build_dir), kernels, opt=opt)))
    with tempfile.TemporaryDirectory(prefix="tt-harness-") as tmp:
        return parse(cases, run_elf(board_name, build(board_name, cases, Path(tmp), kernels, opt=opt)))
