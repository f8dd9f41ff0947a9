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
_INSN = re.compile(r"^0x([0-9a-f]+):")
_EXEC = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] (\S*)")


@contextmanager
def logging_qemu(log: Path):
    """emulator.boot starts QEMU with the translation / execution log into `log`."""
    from tinytrain import emulator
    orig = emulator.qemu_command

    def cmd(*a, **k):
        return orig(*a, **k) + ["-d", "in_asm,exec,nochain", "-D", str(log)]
    emulator.qemu_command = cmd
    try:
        yield
    finally:
        emulator.qemu_command = orig


def per_function(log: Path) -> dict[str, int]:
    """{symbol: instructions executed} from a log written under logging_qemu."""
    size: dict[int, int] = {}
    counts: collections.Counter = collections.Counter()
    cur_pc, cur_n = None, 0
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("Trace"):
                m = _EXEC.match(line)
                if m:
                    counts[(int(m.group(1), 16), m.group(2))] += 1
                continue
            if line.startswith("IN:"):
                if cur_pc is not None:
                    size[cur_pc] = cur_n
                cur_pc, cur_n = None, 0
                continue
            m = _INSN.match(line)
            if m:
                if cur_pc is None:
                    cur_pc = int(m.group(1), 16)
                cur_n += 1
    if cur_pc is not None:
        size[cur_pc] = cur_n
    out: collections.Counter = collections.Counter()
    for (pc, sym), n in counts.items():
        out[sym or f"0x{pc:x}"] += n * size.get(pc, 0)
    return dict(out)
