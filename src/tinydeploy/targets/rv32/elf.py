"""A minimal little-endian ELF32 reader: sections, symbols and loadable segments.

Only what the rv32 harness needs (pyelftools is not a dependency): section sizes for the report,
the symbol table for `SimResult.read`, PT_LOAD segments to fill the simulated SRAM, and the
executable ranges from which the instruction-start table is built.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

SHT_SYMTAB = 2
SHT_NOBITS = 8
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
PT_LOAD = 1
STT_FUNC = 2


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    size: int
    flags: int
    type: int
    data: bytes  # empty for NOBITS (.bss, .stack)

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    kind: int  # STT_* (0 notype, 1 object, 2 func, ...)


@dataclass(frozen=True)
class Segment:
    vaddr: int
    data: bytes  # file bytes; memsz beyond them is zero in a fresh SRAM
    memsz: int


@dataclass(frozen=True)
class Elf32:
    entry: int
    sections: list[Section]
    symbols: dict[str, Symbol]
    segments: list[Segment]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


def _cstr(table: bytes, off: int) -> str:
    end = table.index(b"\0", off)
    return table[off:end].decode("utf-8", "replace")


def read_elf(path: Path) -> Elf32:
    raw = Path(path).read_bytes()
    if raw[:4] != b"\x7fELF" or raw[4] != 1 or raw[5] != 1:
        raise ValueError(f"{path}: not a little-endian ELF32 file")
    (_, _, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(
        "<HHIIIIIHHHHHH", raw, 16)

    headers = [struct.unpack_from("<IIIIIIIIII", raw, shoff + i * shentsize) for i in range(shnum)]
    strtab_hdr = headers[shstrndx]
    names = raw[strtab_hdr[4]:strtab_hdr[4] + strtab_hdr[5]]
    sections = []
    for (name, typ, flags, addr, off, size, *_rest) in headers:
        data = b"" if typ == SHT_NOBITS else raw[off:off + size]
        sections.append(Section(_cstr(names, name), addr, size, flags, typ, data))

    symbols: dict[str, Symbol] = {}
    for (_, typ, _, _, off, size, link, _, _, entsize) in headers:
        if typ != SHT_SYMTAB:
            continue
        strs = raw[headers[link][4]:headers[link][4] + headers[link][5]]
        for i in range(1, size // entsize):
            st_name, value, st_size, info, _, shndx = struct.unpack_from("<IIIBBH", raw, off + i * entsize)
            name = _cstr(strs, st_name)
            # Section and file symbols have no use here. On duplicate names (two static
            # functions) the first wins; names read back by callers are unique globals.
            # Skip mapping symbols ($x, $d) and assembler-local labels (.L...).
            if name[:1] in ("", "$") or name.startswith(".L") or shndx == 0:
                continue
            if (info & 0xF) in (0, 1, 2) and name not in symbols:
                symbols[name] = Symbol(name, value, st_size, info & 0xF)

    segments = []
    for i in range(phnum):
        typ, off, vaddr, _, filesz, memsz, _, _ = struct.unpack_from("<IIIIIIII", raw, phoff + i * phentsize)
        if typ == PT_LOAD and memsz:
            segments.append(Segment(vaddr, raw[off:off + filesz], memsz))
    return Elf32(entry, sections, symbols, segments)
