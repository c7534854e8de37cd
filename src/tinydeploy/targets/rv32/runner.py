"""Public API of the rv32 target: build C sources into an ELF, run it in the simulator.

    from tinydeploy.targets.rv32.runner import build, simulate, Rv32Config
    res = build([Path("main.c")], [Path("include")], Path("out"), Rv32Config())
    sim = simulate(res, Rv32Config())
    sim.exit_code, sim.console, sim.instructions, sim.read("output"), sim.stack_used_bytes

The runtime (runtime/baremetal: crt0.S, td_sim.S, hal_rv32.c, libc.c, libm.c) is always linked in and its
directory is on the include path, so sources can `#include "hal.h"` and define `int main(void)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.errors import BudgetError, TinydeployError

from . import toolchain
from .config import SRAM_BASE, Rv32Config
from .elf import Elf32, read_elf
from .simulator import SimResult, run

__all__ = ["BuildResult", "Rv32Config", "SimResult", "build", "simulate"]


@dataclass(frozen=True)
class BuildResult:
    elf: Path
    map_file: Path
    sections: dict[str, int]             # bytes per section: .text .rodata .data .bss .stack
    code_bytes: int                      # .text
    symbols: dict[str, tuple[int, int]]  # name -> (address, size)
    stack_bytes_reserved: int
    sram_used_bytes: int                 # all of the above including alignment padding
    config: Rv32Config


def _sizes(elf: Elf32) -> dict[str, int]:
    return {name: (sec.size if (sec := elf.section(name)) else 0) for name in toolchain.REPORTED_SECTIONS}


def build(sources: list[Path], include_dirs: list[Path], out_dir: Path, config: Rv32Config,
          defines: dict[str, str] | None = None) -> BuildResult:
    """Compile and link; raise TinydeployError (one line, naming bytes) if the image exceeds SRAM."""
    sources, out_dir = toolchain.prepare(sources, out_dir, "rv32")
    runtime = [toolchain.RUNTIME_DIR / name for name in toolchain.RUNTIME_SOURCES]
    objects = toolchain.compile_objects(sources + runtime, [Path(d) for d in include_dirs],
                                        out_dir / "obj", config, defines)
    try:
        elf_path, map_path = toolchain.link(objects, out_dir, config, toolchain.linker_script(config))
    except OverflowError:
        _raise_overflow(objects, out_dir, config)
    elf = read_elf(elf_path)
    sections = _sizes(elf)
    return BuildResult(
        elf=elf_path, map_file=map_path, sections=sections, code_bytes=sections[".text"],
        symbols={name: (s.addr, s.size) for name, s in elf.symbols.items()},
        stack_bytes_reserved=config.stack_bytes, sram_used_bytes=elf.symbols["_end"].addr - SRAM_BASE,
        config=config)


def _raise_overflow(objects: list[Path], out_dir: Path, config: Rv32Config) -> None:
    # lld only says which section overflowed; link again into a 1 GiB region to measure them all.
    name = "overflow-probe"
    try:
        elf_path, map_path = toolchain.link(objects, out_dir, config, toolchain.linker_script(config, 1 << 30),
                                            name=name)
        elf = read_elf(elf_path)
    finally:
        for suffix in (".elf", ".map", ".ld"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    s = _sizes(elf)
    need = elf.symbols["_end"].addr - SRAM_BASE
    raise BudgetError(
        f"rv32: program needs {need:,} bytes of SRAM but the target has {config.sram_bytes:,} "
        f"(text {s['.text']:,}, rodata {s['.rodata']:,}, data {s['.data']:,}, bss {s['.bss']:,}, "
        f"stack {s['.stack']:,})")


def simulate(build_result: BuildResult, config: Rv32Config | None = None,
             max_instructions: int = 2_000_000_000) -> SimResult:
    """Run to completion; exit code, console, exact instruction count, memory after the run."""
    config = config or build_result.config
    if config.sram_bytes != build_result.config.sram_bytes or config.stack_bytes != build_result.config.stack_bytes:
        raise TinydeployError("rv32: simulate() got a config whose memory layout differs from the one built with")
    return run(read_elf(build_result.elf), config, max_instructions)
