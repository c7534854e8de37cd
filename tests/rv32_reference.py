"""An independent, slow reference for the rv32 simulator's counts (tests only).

Counts every instruction with a per-instruction UC_HOOK_CODE hook (exact by construction, ~1 M
instructions/s) and serves the counter register from that count. It shares nothing with
simulator.py's block-hook scheme except the ELF loader and the memory map.
"""

from __future__ import annotations

from pathlib import Path

import unicorn
from unicorn import riscv_const as rc

from tinydeploy.targets.rv32.config import MMIO_BASE, MMIO_SIZE, SRAM_BASE
from tinydeploy.targets.rv32.elf import read_elf


def reference_run(elf_path: Path, sram_bytes: int, max_instructions: int = 5_000_000):
    """-> (instructions retired up to _td_halt, counter values served in order, console text)."""
    elf = read_elf(elf_path)
    uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
    uc.ctl_set_tcg_buffer_size(32 << 20)
    uc.mem_map(SRAM_BASE, sram_bytes)
    for seg in elf.segments:
        uc.mem_write(seg.vaddr, seg.data)
    n = 0
    latch = 0
    values: list[int] = []
    console = bytearray()

    def on_code(uc, address, size, _):
        nonlocal n
        n += 1
        if n > max_instructions:
            uc.emu_stop()

    def on_read(uc, offset, size, _):
        nonlocal latch
        if offset == 4:
            value = n - 1  # the hook already counted the load itself, which has not retired
            values.append(value)
            latch = value >> 32
            return value & 0xFFFFFFFF
        return latch if offset == 8 else 0

    def on_write(uc, offset, size, value, _):
        if offset == 0:
            console.append(value & 0xFF)

    uc.hook_add(unicorn.UC_HOOK_CODE, on_code)
    uc.mmio_map(MMIO_BASE, MMIO_SIZE, on_read, None, on_write, None)
    halt = elf.symbols["_td_halt"].addr
    uc.emu_start(elf.entry, halt)
    assert uc.reg_read(rc.UC_RISCV_REG_PC) == halt, "reference run did not reach _td_halt"
    return n, values, console.decode()
