"""The C kernels of firmware/kernels/: which file defines which function, which optimised
variants exist, and which files a generated model needs.

Layout: one folder per op (firmware/kernels/<op>/). A reference kernel `tt_<op>_<t>` and its
optimised variants `tt_<op>_<t>_<variant>` (variant: `dsp` for the Cortex-M DSP extension,
`mve` for Helium) sit side by side, each in its own file. The code generator asks for a
reference function name and gets the best variant the board can run (`choose`); a project
then receives only the kernel files its model calls, with everything they call in turn.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..resources import firmware_dir

# Variants a board may run, best first, by the board file's `simd` field.
VARIANTS_BY_SIMD = {"none": (), "dsp": ("dsp",), "helium": ("mve", "dsp")}

_DEF = re.compile(r"^[A-Za-z_][^;{}()#=]*?\b(tt_[A-Za-z0-9_]+)\s*\([^;{}]*?\)\s*\{", re.M | re.S)
_CALL = re.compile(r"\b(tt_[A-Za-z0-9_]+)\s*\(")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


@dataclass
class KernelIndex:
    root: Path
    defined_in: dict[str, Path] = field(default_factory=dict)    # function -> file
    calls: dict[Path, set[str]] = field(default_factory=dict)    # file -> tt_ functions it calls

    def has(self, function: str) -> bool:
        return function in self.defined_in

    def files_for(self, functions) -> list[Path]:
        """The kernel files defining `functions` and everything they call, transitively
        (functions not defined in a kernel file, such as header inlines, are skipped)."""
        todo = [f for f in functions if f in self.defined_in]
        files: set[Path] = set()
        while todo:
            path = self.defined_in[todo.pop()]
            if path in files:
                continue
            files.add(path)
            todo.extend(f for f in self.calls[path] if f in self.defined_in)
        return sorted(files)

    def variants(self, function: str) -> list[str]:
        """Variant names that exist for a reference kernel (e.g. ["dsp", "mve"])."""
        prefix = function + "_"
        return sorted(f[len(prefix):] for f in self.defined_in
                      if f.startswith(prefix) and f[len(prefix):] in ("dsp", "mve"))


def _scan(root: Path) -> KernelIndex:
    index = KernelIndex(root)
    for path in sorted(root.rglob("*.c")):
        text = _COMMENT.sub(" ", path.read_text())
        defined = set()
        for m in _DEF.finditer(text):
            name = m.group(1)
            if name in index.defined_in and index.defined_in[name] != path:
                raise RuntimeError(f"{name} is defined in {index.defined_in[name]} and {path}")
            index.defined_in[name] = path
            defined.add(name)
        index.calls[path] = {c for c in _CALL.findall(text)} - defined
    return index


@functools.lru_cache(maxsize=4)
def _cached(root: str, stamp: tuple) -> KernelIndex:
    return _scan(Path(root))


def kernel_index(root: Path | None = None) -> KernelIndex:
    """The index of firmware/kernels (rescanned when a file changes)."""
    root = Path(root or firmware_dir() / "kernels")
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted(root.rglob("*.c")))
    return _cached(str(root), stamp)


_STRUCT = re.compile(r"typedef\s+struct\s*\{(.*?)\}\s*(tt_\w+)\s*;", re.S)


@functools.lru_cache(maxsize=4)
def _struct_fields(include: str) -> dict[str, int]:
    fields: dict[str, int] = {}
    for path in sorted(Path(include).glob("*.h")):
        text = _COMMENT.sub(" ", path.read_text())
        for m in _STRUCT.finditer(text):
            members = [d for d in m.group(1).split(";") if d.strip()]
            if any("[" in d for d in members):
                continue    # a kernel's working struct (arrays), never a parameter struct
            fields[m.group(2)] = sum(len(d.split(",")) for d in members)
    return fields


def struct_bytes(ctype: str, include: Path | None = None) -> int:
    """sizeof a parameter struct of firmware/include on a 32-bit core, read from its header:
    the structs hold 32-bit members only (int32_t, float, pointers; a narrower one pads to 4),
    so 4 bytes a member (tests/test_compile.py checks it against arm-none-eabi-gcc)."""
    fields = _struct_fields(str(include or firmware_dir() / "include"))
    if ctype not in fields:
        raise KeyError(f"no typedef struct {ctype} in firmware/include")
    return 4 * fields[ctype]


def choose(function: str, simd: str, allowed: dict[str, bool] | None = None,
           index: KernelIndex | None = None) -> str:
    """The kernel to call for reference kernel `function` on a board with `simd`: the best
    variant that exists and that the op allows for this layer (`allowed[variant]`), else the
    reference itself. Variants are opt-in: a variant may take more arguments than its
    reference (a requantisation table, a scratch buffer), so only the op unit that passes
    them may ask for it."""
    index = index or kernel_index()
    for variant in VARIANTS_BY_SIMD.get(simd, ()):
        name = f"{function}_{variant}"
        if index.has(name) and (allowed or {}).get(variant, False):
            return name
    return function
