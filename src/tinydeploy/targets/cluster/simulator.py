"""Run a cluster ELF: one unicorn engine per core, exact and deterministic counts (README.md).

Memory. L1 and the code pages at the start of L2 are one numpy buffer each, mapped into every
engine with mem_map_ptr, so a store by one core (or by the DMA model) is seen by all. The rest of
L2 is mapped into no engine: a core touching it faults, and the error names core, PC and address.

Counting. Each engine runs rv32's native block hook (hooks.attach_counter): retired instructions
per core, exact after every stop (simulator.settle). A core's modelled cycles are its retired
instructions plus the cycles it spent waiting at the barrier or on the DMA.

Timed accesses. The peripheral page is an mmio_map per engine. Core id, core count and the DMA
registers are answered at once. Accesses whose effect depends on simulated time (console, cycle
counter, barrier, DMA start and wait) are "record, stop, serve, replay": the first callback
records the request and calls emu_stop(), which aborts the access (the PC stays on it); the
scheduler serves the request at the core's exact cycle; on resume the access runs again and the
second callback returns the stored result, so it retires once.

Scheduling. The next thing done is always the one earliest in simulated time, ties by core id:
either serve the earliest pending request, or run the earliest running core for a quantum of at
least `quantum` instructions (it ends at a block boundary). So requests are served in (cycle,
core) order whatever the quantum, which makes DMA queueing, barrier releases and console output
independent of host scheduling: counts are identical across runs and quanta. Cores communicate
only through the barrier and the DMA; a program that races on L1 without them is not
deterministic here (nor on hardware).
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

import numpy as np
import unicorn
from unicorn import riscv_const as rc

from tinydeploy.errors import TinydeployError

from ..rv32.elf import Elf32
from ..rv32.hooks import F_LIMIT, F_OUTSIDE, attach_counter
from ..rv32.simulator import (STACK_PAINT, Faults, Where, instruction_prefix, new_engine, page_aligned_zeros, settle,
                              stack_depth)
from .config import (BARRIER, CONSOLE, CORE_ID, CYCLES_HI, CYCLES_LO, DMA_REGS, DMA_START, DMA_WAIT, L1_BASE, L2_BASE,
                     NCORES, PERIPH_BASE, PERIPH_SIZE, ClusterConfig)
from .dma import Dma, DmaError, Memory, Transfer

# Smallest quantum: a translated block holds at most 512 instructions (QEMU's TCG_MAX_INSNS), so a
# quantum of at least that always lets the first block of a run execute.
MIN_QUANTUM = 512
DEFAULT_QUANTUM = 50_000  # ~17 us of host overhead per quantum: ~2 % at this size
RUN, REQUEST, BARRIER_WAIT, DONE = range(4)
_TIMED_READS = (CYCLES_LO, DMA_START)
_TIMED_WRITES = (CONSOLE, BARRIER, DMA_WAIT)
_DMA_INDEX = {off: i for i, off in enumerate(DMA_REGS)}


@dataclass
class ClusterResult:
    """One run. Every cycle figure is modelled (README.md): 1 cycle per retired instruction per
    core, plus barrier and DMA waits; `cycles` is the cluster's critical path."""
    exit_codes: list[int]
    console: str
    instructions: list[int]      # retired, per core
    idle_barrier: list[int]      # cycles waiting at the barrier, per core
    idle_dma: list[int]          # cycles waiting in td_dma_wait, per core
    core_cycles: list[int]       # instructions + idle_barrier + idle_dma, per core
    cycles: int                  # max over cores, and over DMA completions
    dma_transfers: int
    dma_bytes: int
    dma_cycles: int              # cycles the DMA channel was busy
    dma_stall_cycles: int        # cycles during which at least one core waited on the DMA
    stack_used_bytes: list[int]  # per core
    seconds: float               # host time of the simulation
    clock_hz: int
    transfers: list[Transfer] = field(repr=False)
    symbols: dict[str, tuple[int, int]] = field(repr=False)
    l1: np.ndarray = field(repr=False)
    l2: np.ndarray = field(repr=False)

    @property
    def exit_code(self) -> int:
        """Core 0's, or the first non-zero one."""
        return next((code for code in self.exit_codes if code), 0)

    @property
    def total_instructions(self) -> int:
        return sum(self.instructions)

    @property
    def instructions_per_second(self) -> float:
        """Host simulation speed over all cores (not a modelled figure)."""
        return self.total_instructions / self.seconds if self.seconds > 0 else float("inf")

    @property
    def utilisation(self) -> list[float]:
        """Per core: retired instructions / cluster cycles (modelled)."""
        return [n / self.cycles if self.cycles else 0.0 for n in self.instructions]

    @property
    def dma_overlap(self) -> float:
        """Share of the DMA's busy time that no core spent waiting on it (modelled)."""
        return 1.0 - self.dma_stall_cycles / self.dma_cycles if self.dma_cycles else 1.0

    @property
    def modelled_seconds(self) -> float:
        return self.cycles / self.clock_hz

    def read(self, symbol: str) -> bytes:
        """Bytes of a global (its ELF symbol size) in L1 or L2 after the run."""
        addr, size = _symbol(self.symbols, symbol)
        return _region(self.l1, self.l2, addr, size, symbol).tobytes()

    def read_array(self, symbol: str, dtype) -> np.ndarray:
        return np.frombuffer(self.read(symbol), dtype=dtype).copy()


def _symbol(symbols: dict[str, tuple[int, int]], name: str) -> tuple[int, int]:
    if name not in symbols:
        raise TinydeployError(f"cluster: no symbol {name!r} in the program (is it static or optimised away?)")
    return symbols[name]


def _region(l1: np.ndarray, l2: np.ndarray, addr: int, size: int, what: str) -> np.ndarray:
    for base, buf in ((L1_BASE, l1), (L2_BASE, l2)):
        if base <= addr and addr + size <= base + len(buf):
            return buf[addr - base:addr - base + size]
    raise TinydeployError(f"cluster: {what} at {addr:#x} (+{size:,} bytes) is not in L1 or L2")


class _Core:
    __slots__ = ("id", "uc", "st", "faults", "keep", "pc", "state", "idle_barrier", "idle_dma", "arrive", "request",
                 "replay", "hi", "regs", "exit_code", "error")

    def __init__(self, cid: int, pc: int):
        self.id, self.pc, self.state = cid, pc, RUN
        self.idle_barrier = self.idle_dma = self.arrive = self.hi = self.exit_code = 0
        self.request = self.replay = self.error = None
        self.regs = [0] * len(DMA_REGS)

    @property
    def instructions(self) -> int:
        return int(self.st.count)

    @property
    def cycles(self) -> int:
        return self.st.count + self.idle_barrier + self.idle_dma


class Cluster:
    def __init__(self, elf: Elf32, config: ClusterConfig, *, quantum: int = DEFAULT_QUANTUM,
                 max_instructions: int = 2_000_000_000, inputs: dict | None = None, use_c_hook: bool = True):
        if quantum < MIN_QUANTUM:
            raise TinydeployError(f"cluster: quantum must be at least {MIN_QUANTUM} instructions, got {quantum}")
        syms = elf.symbols
        for need in ("_td_halt", "_code_end", "_bss_start", "_bss_end", "_stack_top", "_td_stack_bytes"):
            if need not in syms:
                raise TinydeployError(f"cluster: the program lacks {need}: was it built by targets.cluster?")
        self.config, self.quantum, self.max_instructions = config, quantum, max_instructions
        self.halt, self.where = syms["_td_halt"].addr, Where(elf)
        self.symbols = {k: (s.addr, s.size) for k, s in syms.items()}

        self.l1 = page_aligned_zeros(config.l1_bytes)
        self.l2 = page_aligned_zeros(config.l2_bytes)
        for seg in elf.segments:
            _region(self.l1, self.l2, seg.vaddr, seg.memsz, "a loadable segment")[:len(seg.data)] = \
                np.frombuffer(seg.data, dtype=np.uint8)
        self.stack_bytes = syms["_td_stack_bytes"].addr
        top = syms["_stack_top"].addr - L1_BASE
        self.stacks = [self.l1[top - (i + 1) * self.stack_bytes:top - i * self.stack_bytes] for i in range(config.cores)]
        for stack in self.stacks:
            stack[:] = STACK_PAINT
        bss = range(syms["_bss_start"].addr, syms["_bss_end"].addr)
        for name, value in (inputs or {}).items():
            addr, size = _symbol(self.symbols, name)
            if addr in bss:
                raise TinydeployError(f"cluster: input {name!r} is in .bss, which the start-up code clears: "
                                      f"place it with TD_L1 or TD_L2")
            data = np.ascontiguousarray(value).view(np.uint8).ravel()
            if data.size != size:
                raise TinydeployError(f"cluster: input {name!r} has {data.size:,} bytes but the symbol has {size:,}")
            _region(self.l1, self.l2, addr, size, f"input {name!r}")[:] = data
        self.code_bytes = -(-(syms["_code_end"].addr - L2_BASE) // 4096) * 4096
        self.dma = Dma(Memory({"L1": (L1_BASE, self.l1, 0), "L2": (L2_BASE, self.l2, self.code_bytes)}),
                       config.dma_latency, config.dma_bytes_per_cycle)
        self.console = bytearray()
        self.stalls: list[tuple[int, int]] = []

        self.prefix_lo, self.prefix = instruction_prefix(elf)
        common = dict(count=0, limit=0, lo=self.prefix_lo, nhalf=len(self.prefix) - 1, console_cap=0, load_pc=0)
        self.cores = [_Core(cid, elf.entry) for cid in range(config.cores)]
        for c in self.cores:
            c.uc = uc = new_engine()
            uc.mem_map_ptr(L2_BASE, self.code_bytes, unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC, self.l2.ctypes.data)
            uc.mem_map_ptr(L1_BASE, config.l1_bytes, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE, self.l1.ctypes.data)
            uc.mmio_map(PERIPH_BASE, PERIPH_SIZE, self._read, c.id, self._write, c.id)
            c.st, c.keep = attach_counter(uc, common, self.prefix, use_c_hook)
            c.faults = Faults(uc)

    # -- peripherals (called by unicorn inside emu_start) ------------------------------------------

    def _read(self, uc, offset, size, cid):
        c = self.cores[cid]
        if offset == CORE_ID:
            return cid
        if offset == NCORES:
            return self.config.cores
        if offset == CYCLES_HI:
            return c.hi
        if offset in _TIMED_READS:
            if c.replay is not None and c.replay[0] == offset:
                value, c.replay = c.replay[1], None
                return value
            c.request = (offset, 0)
            uc.emu_stop()
            return 0
        if offset in _DMA_INDEX:
            return c.regs[_DMA_INDEX[offset]]
        return self._unknown(uc, c, "read from", offset)

    def _write(self, uc, offset, size, value, cid):
        c = self.cores[cid]
        if offset in _DMA_INDEX:
            c.regs[_DMA_INDEX[offset]] = value
        elif offset in _TIMED_WRITES:
            if c.replay is not None and c.replay[0] == offset:
                c.replay = None
            else:
                c.request = (offset, value)
                uc.emu_stop()
        else:
            self._unknown(uc, c, "write to", offset)

    def _unknown(self, uc, c: _Core, what: str, offset: int) -> int:
        c.error = f"{what} unknown peripheral register {PERIPH_BASE + offset:#x}"
        uc.emu_stop()
        return 0

    # -- scheduling ----------------------------------------------------------------------------------

    def run(self) -> ClusterResult:
        t_start = time.perf_counter()
        cores = self.cores
        while True:
            best = None
            for c in cores:  # earliest in simulated time; ties go to the lower core id
                if c.state <= REQUEST and (best is None or c.cycles < best.cycles):
                    best = c
            if best is None:
                break
            if best.state == REQUEST:
                self._serve(best)
            else:
                self._step(best)
        waiting = [c for c in cores if c.state == BARRIER_WAIT]
        if waiting:
            done = [c.id for c in cores if c.state == DONE]
            raise TinydeployError(f"cluster: deadlock: cores {_ids(waiting)} wait at the barrier but cores "
                                  f"{', '.join(map(str, done))} have finished")
        self.dma.finish()
        used = [stack_depth(s) for s in self.stacks]
        for c, depth in zip(cores, used):
            if depth == self.stack_bytes:
                raise TinydeployError(f"cluster: core {c.id} used all of its {self.stack_bytes:,}-byte stack and "
                                      f"probably overflowed it; raise stack_bytes")
        seconds = time.perf_counter() - t_start
        result = ClusterResult(
            exit_codes=[c.exit_code for c in cores], console=self.console.decode("utf-8", "replace"),
            instructions=[c.instructions for c in cores], idle_barrier=[c.idle_barrier for c in cores],
            idle_dma=[c.idle_dma for c in cores], core_cycles=[c.cycles for c in cores],
            cycles=max([c.cycles for c in cores] + [self.dma.free_at]),
            dma_transfers=len(self.dma.transfers), dma_bytes=self.dma.nbytes, dma_cycles=self.dma.busy_cycles,
            dma_stall_cycles=_union(self.stalls), stack_used_bytes=used, seconds=seconds,
            clock_hz=self.config.clock_hz, transfers=self.dma.transfers, symbols=self.symbols, l1=self.l1, l2=self.l2)
        for c in cores:
            c.uc = None  # release the engines before the hook state goes away
            c.keep.clear()
        return result

    def _step(self, c: _Core) -> None:
        """Run one core for a quantum, or until a timed access or the end of its program."""
        st = c.st
        before = st.count
        st.limit = before + self.quantum
        try:
            c.uc.emu_start(c.pc, self.halt)
        except unicorn.UcError as exc:
            self._raise_fault(c, exc)
        c.pc = pc = c.uc.reg_read(rc.UC_RISCV_REG_PC)
        if c.faults.traps:
            raise TinydeployError(f"cluster: core {c.id}: {c.faults.trap_message(st.last_start, self.where)}")
        if c.error:
            raise TinydeployError(f"cluster: core {c.id} {c.error} at pc {pc:#x}{self.where(pc)}")
        flags, st.flags = st.flags, 0
        if flags & F_OUTSIDE:
            raise TinydeployError(f"cluster: core {c.id} jumped outside the program's code, to {st.bad_pc:#x}")
        settle(st, self.prefix, pc)
        if st.count > self.max_instructions:
            raise TinydeployError(f"cluster: core {c.id} did not finish within {self.max_instructions:,} instructions "
                                  f"(stopped at pc {pc:#x}{self.where(pc)}); raise max_instructions if it is just long")
        if pc == self.halt:
            c.state, c.exit_code = DONE, ctypes.c_int32(c.uc.reg_read(rc.UC_RISCV_REG_A0)).value
        elif c.request is not None:
            c.state = REQUEST
        elif not flags & F_LIMIT:
            raise TinydeployError(f"cluster: internal error: core {c.id} stopped at pc {pc:#x} for no known reason")
        elif st.count == before:
            raise TinydeployError(f"cluster: internal error: core {c.id} made no progress at pc {pc:#x} "
                                  f"(a block longer than the {self.quantum:,}-instruction quantum?)")

    def _serve(self, c: _Core) -> None:
        """Serve a core's timed access at its current cycle; the access itself retires on resume."""
        (offset, value), c.request = c.request, None
        now, reply, c.state = c.cycles, None, RUN
        try:
            if offset == CONSOLE:
                self.console.append(value & 0xFF)
            elif offset == CYCLES_LO:
                c.hi, reply = now >> 32, now & 0xFFFFFFFF
            elif offset == DMA_START:
                reply = self.dma.start(c.id, now, c.regs).id
            elif offset == DMA_WAIT:
                done = self.dma.wait(value)
                if done > now:
                    c.idle_dma += done - now
                    self.stalls.append((now, done))
            elif offset == BARRIER:
                c.state, c.arrive = BARRIER_WAIT, now
                self._release_barrier()
        except DmaError as exc:
            raise TinydeployError(f"cluster: core {c.id} at pc {c.pc:#x}{self.where(c.pc)}: {exc}") from None
        c.replay = (offset, reply)

    def _release_barrier(self) -> None:
        if all(c.state == BARRIER_WAIT for c in self.cores):
            release = max(c.arrive for c in self.cores)
            for c in self.cores:
                c.idle_barrier += release - c.arrive
                c.state = RUN

    def _raise_fault(self, c: _Core, exc: unicorn.UcError) -> None:
        pc = c.uc.reg_read(rc.UC_RISCV_REG_PC)
        where = f"at pc {pc:#x}{self.where(pc)}"
        if c.faults.unmapped:
            access, address = c.faults.unmapped[-1]
            if L2_BASE + self.code_bytes <= address < L2_BASE + self.config.l2_bytes:
                kind = "write to" if access == unicorn.UC_MEM_WRITE_UNMAPPED else "read from"
                raise TinydeployError(f"cluster: core {c.id} {kind} L2 address {address:#x} {where}: the cores reach "
                                      f"L2 data only through the DMA") from None
            raise TinydeployError(f"cluster: core {c.id}: invalid memory access: "
                                  f"{c.faults.access_message(pc, self.where)}") from None
        raise TinydeployError(f"cluster: core {c.id} stopped with a CPU error {where}: {exc}") from None


def _ids(cores: list[_Core]) -> str:
    return ", ".join(str(c.id) for c in cores)


def _union(intervals: list[tuple[int, int]]) -> int:
    """Total length covered by half-open [start, end) intervals."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total, reach = total + end - start, end
        elif end > reach:
            total, reach = total + end - reach, end
    return total


def run(elf: Elf32, config: ClusterConfig, **options) -> ClusterResult:
    """Simulate to completion; options: quantum, max_instructions (per core), inputs, use_c_hook."""
    return Cluster(elf, config, **options).run()
