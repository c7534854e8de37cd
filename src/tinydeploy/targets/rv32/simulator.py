"""Run an rv32 ELF in unicorn with exact, deterministic retired-instruction counts.

Exactness. unicorn's cycle/instret CSRs return host time, so counts come from a UC_HOOK_BLOCK
hook instead: at block entry it adds the block's instruction count, looked up in a prefix table of
instruction starts (2- and 4-byte instructions) built by a linear sweep of the ELF's .text.
A block is cut short only by a stop; then the PC is exact (unicorn restores it to the aborted
instruction, which runs again on resume) and the count is set back to the instructions retired
before it. The program reaches its end by jumping to `_td_halt`, passed as emu_start's `until`:
unicorn stops there before entering the block, so nothing is over-counted.

The program's own counter (td_cycles(), an mmio register) is exact too. Inside an mmio callback
unicorn's PC register holds the block start, not the load's PC, so the callback cannot ask where
it is. It does not need to: the load in td_cycles() sits at a known address (`td_cycles_load`),
and the value is "instructions before the current block + instructions from the block start to
that load", all from the same prefix table. A counter read from anywhere else is served by
"stop, resume at the load, serve": the stop makes the PC exact and the resumed block starts at
the load. tests/test_target_rv32.py checks both against a per-instruction reference count.

Speed (`python tests/rv32_speed.py`, naive int8 matmul, this 2-core machine class): with the C
hook 300-650 M instructions/s on long runs (466 M/s measured at 0.8 G instructions), plus a fixed
3-8 ms per run for engine creation, so a 0.8 M instruction program takes ~8 ms (~100 M/s overall).
The Python fallback hook, used only when the C hook cannot be built, runs ~6 M instructions/s.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

import numpy as np
import unicorn
from unicorn import riscv_const as rc

from tinydeploy.errors import TinydeployError

from .config import SRAM_BASE, Rv32Config
from .elf import STT_FUNC, Elf32
from .hooks import F_CONSOLE_FULL, F_LIMIT, F_OUTSIDE, F_REPLAY, attach

STACK_PAINT = 0xA5


# ---------------------------------------------------------------------------------------------
# Instruction-start table.

def instruction_prefix(elf: Elf32) -> tuple[int, np.ndarray]:
    """(lo, prefix) with prefix[i] = instruction starts in [lo, lo + 2*i) over all code.

    A linear sweep is exact for clang's output: RISC-V keeps constants out of .text (they live in
    .rodata), and padding between functions is zeros (c.unimp) or nops, both whole 2-byte units.
    Every function symbol must land on an instruction start; that checks the sweep stayed in sync.
    """
    code = [s for s in elf.sections if s.alloc and s.executable and s.size]
    lo, hi = min(s.addr for s in code), max(s.addr + s.size for s in code)
    starts = np.zeros((hi - lo) // 2, dtype=np.uint32)
    for sec in code:
        half = np.frombuffer(sec.data[: sec.size // 2 * 2], dtype="<u2")
        four = ((half & 3) == 3).tolist()
        base, i, n = (sec.addr - lo) // 2, 0, len(four)
        while i < n:
            starts[base + i] = 1
            i += 2 if four[i] else 1
    for sym in elf.symbols.values():
        if sym.kind == STT_FUNC and lo <= sym.addr < hi and not starts[(sym.addr - lo) // 2]:
            raise TinydeployError(f"rv32: internal error: instruction table out of sync at {sym.name} ({sym.addr:#x})")
    prefix = np.zeros(len(starts) + 1, dtype=np.uint32)
    np.cumsum(starts, out=prefix[1:])
    return lo, prefix


# ---------------------------------------------------------------------------------------------
# One run.

@dataclass
class SimResult:
    """Outcome of one simulated run. `instructions` is also the cycle count (1 cycle/instruction)."""
    exit_code: int
    console: str
    instructions: int
    stack_used_bytes: int
    seconds: float
    symbols: dict[str, tuple[int, int]] = field(repr=False)
    memory: np.ndarray = field(repr=False)  # SRAM contents after the run (uint8)

    @property
    def cycles(self) -> int:
        return self.instructions

    @property
    def instructions_per_second(self) -> float:
        return self.instructions / self.seconds if self.seconds > 0 else float("inf")

    def read(self, symbol: str) -> bytes:
        """Bytes of a global (its ELF symbol size) as left in SRAM after the run."""
        if symbol not in self.symbols:
            raise TinydeployError(f"rv32: no symbol {symbol!r} in the program (is it static or optimised away?)")
        addr, size = self.symbols[symbol]
        off = addr - SRAM_BASE
        if off < 0 or off + size > len(self.memory):
            raise TinydeployError(f"rv32: symbol {symbol!r} at {addr:#x} is not in SRAM")
        return self.memory[off:off + size].tobytes()

    def read_array(self, symbol: str, dtype) -> np.ndarray:
        return np.frombuffer(self.read(symbol), dtype=dtype).copy()


class Where:
    """Name the function containing an address, for error messages."""

    def __init__(self, elf: Elf32):
        funcs = sorted((s.addr, s.size, s.name) for s in elf.symbols.values() if s.kind == STT_FUNC)
        self._funcs = funcs

    def __call__(self, pc: int) -> str:
        for addr, size, name in self._funcs:
            if addr <= pc < addr + max(size, 1):
                return f" in {name}()"
        return ""


# ---------------------------------------------------------------------------------------------
# Pieces shared with the cluster simulator (targets/cluster), which runs one engine per core.

def new_engine() -> unicorn.Uc:
    uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
    uc.ctl_set_tcg_buffer_size(32 << 20)  # the default reserves 1 GiB per engine
    return uc


def page_aligned_zeros(nbytes: int) -> np.ndarray:
    """A zeroed uint8 buffer starting on a 4 KiB boundary, as mem_map_ptr needs (the view keeps
    its base alive); results are read from it without copying out of unicorn."""
    raw = np.zeros(nbytes + 4096, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 4096
    return raw[skip:skip + nbytes]


def settle(st, prefix: np.ndarray, pc: int) -> None:
    """After a stop inside the last block entered (an aborted mmio access, or a limit stop at block
    entry), count only the instructions retired before `pc`."""
    if st.last_start <= pc < st.last_end:
        st.count = st.last_before + int(prefix[(pc - st.lo) >> 1]) - int(prefix[(st.last_start - st.lo) >> 1])


def stack_depth(stack: np.ndarray) -> int:
    """Bytes of a downward-growing stack, painted with STACK_PAINT before the run, that were written."""
    touched = np.flatnonzero(stack != STACK_PAINT)
    return 0 if touched.size == 0 else int(len(stack) - touched[0])


class Faults:
    """Watch an engine for invalid accesses (unmapped or against the page protection: recorded,
    then emu_start raises) and CPU exceptions (recorded and stopped: nothing handles them here)."""

    def __init__(self, uc: unicorn.Uc):
        self.unmapped: list[tuple[int, int]] = []  # (UC_MEM_* access, address)
        self.traps: list[int] = []
        uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED | unicorn.UC_HOOK_MEM_PROT, self._on_unmapped)
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_exception)

    def _on_unmapped(self, uc, access, address, size, value, _):
        self.unmapped.append((access, address))
        return False

    def _on_exception(self, uc, cause, _):
        self.traps.append(cause)
        uc.emu_stop()

    def trap_message(self, block_start: int, where: Where) -> str:
        # unicorn's PC is past the trapping instruction here; the block start is exact.
        cause = self.traps[0]
        return f"{CPU_EXCEPTIONS.get(cause, f'CPU exception {cause}')} in the block at {block_start:#x}{where(block_start)}"

    def access_message(self, pc: int, where: Where) -> str:
        access, address = self.unmapped[-1]
        return f"{ACCESS_KINDS.get(access, 'access to address')} {address:#x} at pc {pc:#x}{where(pc)}"


def run(elf: Elf32, config: Rv32Config, max_instructions: int = 2_000_000_000, *,
        use_c_hook: bool = True, console_bytes: int = 1 << 16) -> SimResult:
    t_start = time.perf_counter()
    syms = elf.symbols
    for need in ("_td_halt", "_stack_bottom", "_stack_top", "_end"):
        if need not in syms:
            raise TinydeployError(f"rv32: the program lacks {need}: was it linked with the rv32 runtime (crt0.S)?")
    halt = syms["_td_halt"].addr
    where = Where(elf)
    sram = page_aligned_zeros(config.sram_bytes)
    for seg in elf.segments:
        off = seg.vaddr - SRAM_BASE
        sram[off:off + len(seg.data)] = np.frombuffer(seg.data, dtype=np.uint8)
    stack_lo, stack_hi = syms["_stack_bottom"].addr - SRAM_BASE, syms["_stack_top"].addr - SRAM_BASE
    sram[stack_lo:stack_hi] = STACK_PAINT
    mapped = config.sram_bytes
    if config.guard:
        mapped = min(config.sram_bytes, -(-(syms["_end"].addr - SRAM_BASE) // 4096) * 4096)

    uc = new_engine()
    uc.mem_map_ptr(SRAM_BASE, mapped, unicorn.UC_PROT_ALL, sram.ctypes.data)

    lo, prefix = instruction_prefix(elf)
    common = dict(count=0, limit=max_instructions, lo=lo, nhalf=len(prefix) - 1, console_cap=console_bytes,
                  load_pc=_counter_load_pc(elf))
    st, console, keep = attach(uc, common, prefix, use_c_hook)
    keep += [prefix, sram]  # alive for as long as the engine may call back
    faults = Faults(uc)

    out = bytearray()
    pc = elf.entry
    while True:
        try:
            uc.emu_start(pc, halt)
        except unicorn.UcError as exc:
            _raise_fault(uc, exc, faults, config, syms, where)
        pc = uc.reg_read(rc.UC_RISCV_REG_PC)
        if faults.traps:
            raise TinydeployError(f"rv32: {faults.trap_message(st.last_start, where)}")
        flags, st.flags = st.flags, 0
        if flags & F_LIMIT:
            raise TinydeployError(f"rv32: the program did not finish within {max_instructions:,} instructions "
                                  f"(stopped at pc {pc:#x}{where(pc)}); raise max_instructions if it is just long")
        if flags & F_OUTSIDE:
            raise TinydeployError(f"rv32: the program jumped outside its code, to {st.bad_pc:#x}")
        settle(st, prefix, pc)
        if pc == halt:
            break
        out += bytes(console[:st.console_len])
        st.console_len = 0
        if flags & F_REPLAY:
            st.resume_pc, st.resume_armed = pc, 1
        elif not flags & F_CONSOLE_FULL:
            raise TinydeployError(f"rv32: internal error: simulation stopped at pc {pc:#x} for no known reason")
    out += bytes(console[:st.console_len])
    exit_code = ctypes.c_int32(uc.reg_read(rc.UC_RISCV_REG_A0)).value
    instructions = int(st.count)
    del uc  # release the engine before its callbacks' state goes away
    keep.clear()

    return SimResult(exit_code=exit_code, console=out.decode("utf-8", "replace"), instructions=instructions,
                     stack_used_bytes=stack_depth(sram[stack_lo:stack_hi]), seconds=time.perf_counter() - t_start,
                     symbols={k: (s.addr, s.size) for k, s in syms.items()}, memory=sram)


def _counter_load_pc(elf: Elf32) -> int:
    # 0 (never inside a block) when td_cycles() was not linked in.
    sym = elf.symbols.get("td_cycles_load")
    return sym.addr if sym else 0


CPU_EXCEPTIONS = {2: "illegal instruction (__builtin_trap() and unreachable code compile to one)",
                  3: "breakpoint (ebreak)", 8: "ecall", 11: "ecall", 0: "misaligned jump", 4: "misaligned load",
                  6: "misaligned store"}
ACCESS_KINDS = {unicorn.UC_MEM_READ_UNMAPPED: "read from unmapped address",
                unicorn.UC_MEM_WRITE_UNMAPPED: "write to unmapped address",
                unicorn.UC_MEM_FETCH_UNMAPPED: "jump to unmapped address",
                unicorn.UC_MEM_WRITE_PROT: "write to read-only address",
                unicorn.UC_MEM_FETCH_PROT: "jump to non-executable address"}


def _raise_fault(uc, exc, faults: Faults, config: Rv32Config, syms, where) -> None:
    pc = uc.reg_read(rc.UC_RISCV_REG_PC)
    sp = uc.reg_read(rc.UC_RISCV_REG_SP)
    if faults.unmapped:
        what = faults.access_message(pc, where)
        if sp < syms["_stack_bottom"].addr:
            raise TinydeployError(f"rv32: stack overflow: the program needs more than its {config.stack_bytes:,}-byte "
                                  f"stack ({what}); raise stack_bytes") from None
        raise TinydeployError(f"rv32: invalid memory access: {what}") from None
    raise TinydeployError(f"rv32: the program stopped with a CPU error at pc {pc:#x}{where(pc)}: {exc}") from None
