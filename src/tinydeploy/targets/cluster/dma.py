"""The cluster DMA (modelled): one channel, transfers served first come first served in simulated
time, each taking `latency + ceil(bytes / bytes_per_cycle)` cycles.

Bytes move when a transfer is known to be complete: when a core waits on it (or on a later one)
or at the end of the run, never at its start. A program that reads a destination, or reuses a
source, before td_dma_wait therefore sees stale data in the simulator, as it could on hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided


class DmaError(Exception):
    """A transfer the hardware would reject or that would corrupt memory; the simulator names the core."""


@dataclass
class Transfer:
    id: int
    core: int
    dst: int
    src: int
    row_bytes: int
    rows: int
    dst_stride: int
    src_stride: int
    planes: int
    dst_plane_stride: int
    src_plane_stride: int
    issue: int   # the issuing core's cycle at the start request
    start: int   # when the channel took it
    done: int    # when its last byte arrived
    copied: bool = False

    @property
    def nbytes(self) -> int:
        return self.row_bytes * self.rows * self.planes


class Memory:
    """The buffers the DMA reaches: name -> (base address, numpy uint8 buffer, first writable offset)."""

    def __init__(self, regions: dict[str, tuple[int, np.ndarray, int]]):
        self.regions = regions

    def view(self, addr: int, shape: tuple[int, int, int], strides: tuple[int, int], write: bool) -> np.ndarray:
        planes, rows, row_bytes = shape
        extent = (planes - 1) * strides[0] + (rows - 1) * strides[1] + row_bytes
        for name, (base, buf, writable_from) in self.regions.items():
            if base <= addr and addr + extent <= base + len(buf):
                if write and addr < base + writable_from:
                    raise DmaError(f"DMA write to {addr:#x} lands in the {name} code region")
                return as_strided(buf[addr - base:], shape=shape, strides=(strides[0], strides[1], 1))
        where = " or ".join(self.regions)
        raise DmaError(f"DMA {'destination' if write else 'source'} {addr:#x}..{addr + extent:#x} is not inside {where}")


class Dma:
    def __init__(self, memory: Memory, latency: int, bytes_per_cycle: int):
        self.memory, self.latency, self.bytes_per_cycle = memory, latency, bytes_per_cycle
        self.transfers: list[Transfer] = []
        self.free_at = 0       # when the channel finishes its last queued transfer
        self.busy_cycles = 0
        self._copied = 0       # transfers [0, _copied) have moved their bytes

    def start(self, core: int, time: int, regs: list[int]) -> Transfer:
        """Queue a transfer from a core's registers (order: config.DMA_REGS) at that core's cycle."""
        src, dst, row_bytes, rows, src_stride, dst_stride, planes, src_plane, dst_plane = regs
        if not (row_bytes and rows and planes):
            raise DmaError(f"empty DMA transfer ({row_bytes} bytes x {rows} rows x {planes} planes)")
        t = Transfer(len(self.transfers), core, dst, src, row_bytes, rows, dst_stride, src_stride, planes,
                     dst_plane, src_plane, issue=time, start=max(time, self.free_at), done=0)
        self._views(t)  # validate now, where the error can name the starting core
        cycles = self.latency + -(-t.nbytes // self.bytes_per_cycle)
        t.done = t.start + cycles
        self.free_at = t.done
        self.busy_cycles += cycles
        self.transfers.append(t)
        return t

    def wait(self, tid: int) -> int:
        """Complete transfer `tid` and every earlier one (one FIFO channel); returns its done cycle."""
        if not 0 <= tid < len(self.transfers):
            raise DmaError(f"td_dma_wait({tid}) on a transfer that was not started "
                           f"({len(self.transfers)} started so far)")
        while self._copied <= tid:
            self._copy(self.transfers[self._copied])
            self._copied += 1
        return self.transfers[tid].done

    def finish(self) -> None:
        """End of the run: transfers nobody waited for complete too."""
        if self.transfers:
            self.wait(len(self.transfers) - 1)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.transfers)

    def _views(self, t: Transfer) -> tuple[np.ndarray, np.ndarray]:
        shape = (t.planes, t.rows, t.row_bytes)
        src = self.memory.view(t.src, shape, (t.src_plane_stride, t.src_stride), write=False)
        dst = self.memory.view(t.dst, shape, (t.dst_plane_stride, t.dst_stride), write=True)
        return src, dst

    def _copy(self, t: Transfer) -> None:
        src, dst = self._views(t)
        dst[...] = src.copy()  # the source as it is at completion; a copy in case the ranges overlap
        t.copied = True
