"""Description of the cluster target: N RV32IMC[F] cores sharing an L1 scratchpad, an L2 reachable
only through the cluster DMA, and a hardware barrier (Siracusa-like; see README.md).

    ClusterConfig(cores=8, l1_bytes=256 * 1024)
    ClusterConfig.load("cluster.toml", cores=4)   # file: l1_bytes = "128KiB" / dma_latency = 30
"""

from __future__ import annotations

from dataclasses import dataclass

from tinydeploy.errors import TinydeployError

from ..rv32.config import FileConfig

# Fixed memory map (not configurable: runtime/cluster/td_cluster.h and the simulator share it).
L1_BASE = 0x1000_0000      # shared L1 (TCDM): .data, .bss, .l1, per-core stacks
PERIPH_BASE = 0x1020_0000  # one mmio page per core: console, counter, event unit, DMA
PERIPH_SIZE = 0x1000
L2_BASE = 0x1C00_0000      # L2: code and constants (mapped for the cores), then .l2 (DMA only)
MAX_L1 = PERIPH_BASE - L1_BASE
MAX_L2 = 64 << 20
MAX_CORES = 32

# Peripheral registers (offsets from PERIPH_BASE). The first three are the rv32 ones, so the rv32
# HAL (console, td_cycles) works unchanged with TD_MMIO_BASE = PERIPH_BASE.
CONSOLE, CYCLES_LO, CYCLES_HI = 0x00, 0x04, 0x08
CORE_ID, NCORES, BARRIER = 0x10, 0x14, 0x18
# DMA: one register set per core (programmed concurrently without locks), one shared channel.
DMA_SRC, DMA_DST, DMA_LEN = 0x40, 0x44, 0x48
DMA_N1, DMA_SRC_STRIDE1, DMA_DST_STRIDE1 = 0x4C, 0x50, 0x54
DMA_N2, DMA_SRC_STRIDE2, DMA_DST_STRIDE2 = 0x58, 0x5C, 0x60
DMA_START, DMA_WAIT = 0x64, 0x68
DMA_REGS = (DMA_SRC, DMA_DST, DMA_LEN, DMA_N1, DMA_SRC_STRIDE1, DMA_DST_STRIDE1,
            DMA_N2, DMA_SRC_STRIDE2, DMA_DST_STRIDE2)


@dataclass(frozen=True)
class ClusterConfig(FileConfig):
    """The cluster, its memories and its timing model (all cycle figures are modelled: README.md).

    cores:               cores in the cluster; all run the same program (SPMD).
    l1_bytes:            shared L1 scratchpad: data, bss, `.l1` buffers and one stack per core.
    l2_bytes:            L2: code and read-only constants first, then `.l2` data, which only the
                         DMA reaches.
    stack_bytes:         stack per core, carved from the top of L1.
    dma_latency:         cycles from the start of a transfer to its first byte (setup).
    dma_bytes_per_cycle: DMA bandwidth; a transfer of n bytes takes latency + ceil(n / bw) cycles.
    clock_hz:            the stated clock for time and tokens/s figures.
    tiling:              "auto": activations in L2 and every node in tile loops when the whole
                         tensors do not fit L1; "always"; "never" (such a model is refused).
    """

    cores: int = 8
    l1_bytes: int = 256 * 1024
    l2_bytes: int = 2 * 1024 * 1024
    stack_bytes: int = 2048
    clock_hz: int = 360_000_000
    dma_latency: int = 20
    dma_bytes_per_cycle: int = 8
    fpu: bool = False
    opt_level: str = "2"
    tiling: str = "auto"

    name = "cluster"

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise TinydeployError(f"cluster: {what}")

        need(1 <= self.cores <= MAX_CORES, f"cores must be between 1 and {MAX_CORES}, got {self.cores}")
        need(0 < self.l1_bytes <= MAX_L1 and self.l1_bytes % 4096 == 0,
             f"l1_bytes must be a positive multiple of 4096 up to {MAX_L1:,}, got {self.l1_bytes:,}")
        need(0 < self.l2_bytes <= MAX_L2 and self.l2_bytes % 4096 == 0,
             f"l2_bytes must be a positive multiple of 4096 up to {MAX_L2:,}, got {self.l2_bytes:,}")
        need(self.stack_bytes >= 256 and self.stack_bytes % 16 == 0,
             f"stack_bytes must be a multiple of 16 and at least 256, got {self.stack_bytes}")
        need(self.cores * self.stack_bytes < self.l1_bytes,
             f"{self.cores} stacks of {self.stack_bytes:,} bytes do not fit in l1_bytes ({self.l1_bytes:,})")
        need(self.clock_hz > 0, f"clock_hz must be positive, got {self.clock_hz}")
        need(self.dma_latency >= 0, f"dma_latency must be at least 0, got {self.dma_latency}")
        need(self.dma_bytes_per_cycle >= 1, f"dma_bytes_per_cycle must be at least 1, got {self.dma_bytes_per_cycle}")
        need(self.tiling in ("auto", "always", "never"),
             f"tiling must be one of auto always never, got {self.tiling!r}")
        need(self.opt_level in ("0", "1", "2", "3", "s", "z"),
             f"opt_level must be one of 0 1 2 3 s z, got {self.opt_level!r}")

    @property
    def memory_levels(self) -> dict[str, int]:
        return {"L1": self.l1_bytes, "L2": self.l2_bytes}

    @property
    def march(self) -> str:
        return "rv32imfc" if self.fpu else "rv32imc"

    def layout(self) -> tuple:
        """What the linked image depends on: a program runs under any config with the same layout
        and at most as many cores as it was built for (timing and clock may differ)."""
        return self.l1_bytes, self.l2_bytes, self.stack_bytes, self.fpu, self.opt_level
