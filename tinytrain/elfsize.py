"""Section sizes of a built ELF, and what they mean in SRAM and flash.

Reads the section header table directly (ELF32 and ELF64, either byte order), so it needs
no binutils and works on the ARM firmware and the native program alike.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyTrainError

SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


@dataclass(frozen=True)
class Section:
    name: str
    size: int
    addr: int
    type: int
    flags: int

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def in_flash(self) -> bool:
        """Has bytes in the image: code, constants, and the load copy of initialised data."""
        return self.alloc and self.type != SHT_NOBITS

    @property
    def in_sram(self) -> bool:
        """Writable at run time: initialised data, zeroed data, the stack section."""
        return self.alloc and bool(self.flags & SHF_WRITE)


def read_sections(path: Path) -> list[Section]:
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF":
        raise TinyTrainError(f"{path}: not an ELF file")
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
        fmt = order + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
        fmt = order + "IIIIIIIIII"
    headers = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = headers[shstrndx][4], headers[shstrndx][5]
    names = data[str_off:str_off + str_size]

    def name_at(i: int) -> str:
        return names[i:names.index(b"\0", i)].decode()

    # fields: name, type, flags, addr, offset, size, link, info, addralign, entsize
    return [Section(name_at(h[0]), h[5], h[3], h[1], h[2]) for h in headers[1:]]


def memory_use(path: Path) -> dict:
    """{'sections': {name: size}, 'flash_bytes': ..., 'sram_bytes': ...} of the allocated sections."""
    sections = [s for s in read_sections(path) if s.alloc and s.size]
    return {
        "sections": {s.name: s.size for s in sections},
        "flash_bytes": sum(s.size for s in sections if s.in_flash),
        "sram_bytes": sum(s.size for s in sections if s.in_sram),
    }
