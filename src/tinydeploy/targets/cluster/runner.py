"""Public API of the cluster target: build C sources into an ELF, run it on the simulated cluster.

    from tinydeploy.targets.cluster.runner import build, simulate, ClusterConfig
    art = build([Path("kernel.c")], [Path("include")], Path("out"), ClusterConfig())
    res = simulate(art, ClusterConfig(cores=1), inputs={"w_l2": w})
    res.cycles, res.instructions, res.idle_barrier, res.idle_dma, res.dma_bytes, res.dma_cycles
    res.console, res.exit_code, res.read_array("y_l2", np.int8)

Sources `#include "td_cluster.h"` (runtime/cluster) and define `int main(void)`, which every
core runs. The rv32 runtime (console, libc, libm) is linked in as on rv32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.errors import BudgetError, TinydeployError

from ..rv32.elf import Elf32, read_elf
from . import toolchain
from ..rv32 import toolchain as rv32_toolchain
from .config import L1_BASE, L2_BASE, ClusterConfig
from .simulator import DEFAULT_QUANTUM, ClusterResult, run

__all__ = ["ClusterBuild", "ClusterConfig", "ClusterResult", "build", "simulate"]


@dataclass(frozen=True)
class ClusterBuild:
    elf: Path
    map_file: Path
    sections: dict[str, int]             # bytes: .text .rodata .l2 (in L2), .data .bss .l1 .stack (in L1)
    code_bytes: int                      # .text
    l1_used_bytes: int                   # all L1 sections including alignment padding
    l2_used_bytes: int                   # code, constants and .l2 data including padding
    symbols: dict[str, tuple[int, int]]  # name -> (address, size)
    config: ClusterConfig


def _sizes(elf: Elf32) -> dict[str, int]:
    return {name: (sec.size if (sec := elf.section(name)) else 0) for name in toolchain.SECTIONS}


def build(sources: list[Path], include_dirs: list[Path], out_dir: Path, config: ClusterConfig,
          defines: dict[str, str] | None = None) -> ClusterBuild:
    """Compile and link; raise TinydeployError (one line, naming bytes) if L1 or L2 overflows."""
    sources, out_dir = rv32_toolchain.prepare(sources, out_dir, "cluster")
    objects = toolchain.compile_objects(sources, [Path(d) for d in include_dirs], out_dir / "obj", config, defines)
    try:
        elf_path, map_path = toolchain.link(objects, out_dir, config)
    except OverflowError:
        _raise_overflow(objects, out_dir, config)
    elf = read_elf(elf_path)
    sections = _sizes(elf)
    return ClusterBuild(elf=elf_path, map_file=map_path, sections=sections, code_bytes=sections[".text"],
                        l1_used_bytes=elf.symbols["_l1_end"].addr - L1_BASE,
                        l2_used_bytes=elf.symbols["_l2_end"].addr - L2_BASE,
                        symbols={name: (s.addr, s.size) for name, s in elf.symbols.items()}, config=config)


def _raise_overflow(objects: list[Path], out_dir: Path, config: ClusterConfig) -> None:
    # lld names only the section that overflowed: link again into huge regions to measure them all
    # (L1 may grow up to the L2 base without overlapping it).
    name = "overflow-probe"
    try:
        elf_path, _ = toolchain.link(objects, out_dir, config, name=name, l1_bytes=L2_BASE - L1_BASE, l2_bytes=1 << 30)
        elf = read_elf(elf_path)
    finally:
        for suffix in (".elf", ".map", ".ld"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    s = _sizes(elf)
    parts = []
    for level, base, end, names, have in (("L1", L1_BASE, "_l1_end", toolchain.L1_SECTIONS, config.l1_bytes),
                                          ("L2", L2_BASE, "_l2_end", toolchain.L2_SECTIONS, config.l2_bytes)):
        need = elf.symbols[end].addr - base
        if need > have:
            detail = ", ".join(f"{n.lstrip('.')} {s[n]:,}" for n in names)
            parts.append(f"{need:,} bytes of {level} but the target has {have:,} ({detail})")
    raise BudgetError("cluster: program needs " + "; and ".join(parts))


def simulate(artifact: ClusterBuild, config: ClusterConfig | None = None, *, quantum: int = DEFAULT_QUANTUM,
             inputs: dict | None = None, max_instructions: int = 2_000_000_000) -> ClusterResult:
    """Run to completion on `config` (default: the build's). `inputs` fills globals (L1 or L2) by
    name before the run, with exactly their size in bytes. `quantum` changes host scheduling only,
    never a count; `max_instructions` bounds each core."""
    config = config or artifact.config
    if config.layout() != artifact.config.layout() or config.cores > artifact.config.cores:
        raise TinydeployError(f"cluster: simulate() needs the memory layout the program was built with "
                              f"(l1_bytes, l2_bytes, stack_bytes, fpu, opt_level) and at most its "
                              f"{artifact.config.cores} cores")
    return run(read_elf(artifact.elf), config, quantum=quantum, inputs=inputs, max_instructions=max_instructions)
