"""Instructions per function of a firmware run under QEMU: the breakdown of a training step by
kernel (bench/bench_fp16.py --breakdown).

QEMU logs every translation block it translates (`-d in_asm`: its instructions) and every one
it executes (`-d exec,nochain`: its start address and the ELF symbol it lies in); the
instructions of each execution are added to that symbol. Static helpers the compiler did not
inline (four_outputs, sgd_block, ...) are counted under their own names. The totals cover the
whole run (boot and the serial link too): callers keep only the kernels (tt_...).
"""
from __future__ import annotations

import collections
import re
from contextlib import contextmanager
from pathlib import Path

_IN = re.compile(r"^IN: ?(\S*)")
_INSN = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f]{4})?")
_BYTES = re.compile(r"\.byte\s+0x([0-9a-f]+),\s*0x([0-9a-f]+)\s*$")
_EXEC = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] (\S*)")


@contextmanager
def logging_qemu(log: Path):
    """emulator.boot starts QEMU with the translation / execution log into `log`."""
    from tinytrain import emulator
    orig = emulator.qemu_command

    def cmd(*a, **k):
        return without_icount(orig(*a, **k)) + ["-d", "in_asm,exec,nochain", "-D", str(log)]
    emulator.qemu_command = cmd
    try:
        yield
    finally:
        emulator.qemu_command = orig


def without_icount(cmd: list[str]) -> list[str]:
    """-icount ends translation blocks early when its budget runs out (the same address then
    has blocks of several lengths): the profile runs without it (the count is the same)."""
    out, skip = [], False
    for a in cmd:
        if skip:
            skip = False
            continue
        if a == "-icount":
            skip = True
            continue
        out.append(a)
    return out


def per_function(log: Path) -> dict[str, int]:
    """{symbol: instructions executed} from a log written under logging_qemu. A guest address
    may be translated more than once with different lengths (icount ends blocks early), so
    each translation is bound to the host block of the first execution that follows it."""
    pending: dict[int, int] = {}          # guest pc -> length of its latest translation
    size: dict[str, int] = {}             # host block -> guest instructions
    counts: collections.Counter = collections.Counter()
    sym_of: dict[str, str] = {}
    cur_pc, cur_n, half_of_32 = None, 0, False

    def close():
        if cur_pc is not None:
            pending[cur_pc] = cur_n
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("Trace"):
                m = _EXEC.match(line)
                if m:
                    ptr, pc = m.group(1), int(m.group(2), 16)
                    if cur_pc is not None:
                        close()
                        cur_pc, cur_n = None, 0
                    if pc in pending:
                        size[ptr] = pending.pop(pc)
                    counts[ptr] += 1
                    sym_of[ptr] = m.group(3) or f"0x{pc:x}"
                continue
            if line.startswith("IN:"):
                close()
                cur_pc, cur_n = None, 0
                continue
            m = _INSN.match(line)
            if m:
                if cur_pc is None:
                    cur_pc = int(m.group(1), 16)
                if half_of_32:          # the second halfword of an instruction QEMU's
                    half_of_32 = False  # disassembler printed as two .byte lines (MVE)
                    continue
                b = _BYTES.search(line)
                if b:
                    hw = int(b.group(2), 16) << 8 | int(b.group(1), 16)
                    half_of_32 = (hw >> 11) in (0b11101, 0b11110, 0b11111)
                cur_n += 1
    out: collections.Counter = collections.Counter()
    for ptr, n in counts.items():
        out[sym_of[ptr]] += n * size.get(ptr, 0)
    return dict(out)
