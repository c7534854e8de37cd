"""The target protocol: what every `targets/<name>/` folder provides. Its `__init__.py` exports `TARGET`,
a subclass of `Target`; the folders are the registry (`targets.names()`, `targets.get()`).

A target is a value (built by `load` from `--target-config`) that `compile`, `run` and `generate`
consult in this order:
  kernels        the kernel variants and cost constants compile may choose (ops/kernels.py)
  check_budget   before building, the one budget check: the compiled data (weights, arena incl.
                 scratch, state, a program's own data) placed in memory levels against their sizes
  run            a compiled network on inputs           -> outputs, Measured
  run_program    a generated main around it (generate)  -> result symbols, console text, Measured
  report         the REPORT.json fields known before running (target, clock_hz, ...)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..errors import BudgetError, TinydeployError
from ..limits import HOST_CONST, ConstLimit
from ..ops.kernels import Kernels

if TYPE_CHECKING:
    from ..codegen.network import CProgram
    from ..compiler import Compiled, Footprint


@dataclass
class Measured:
    """What a run measured, as REPORT.json fields (BRIEF section 3); None where nothing counts."""
    cycles: int | None = None                # the timed network run; for a program, the whole program
    layer_cycles: list[int] | None = None    # per emitted layer (network runs)
    memory: dict[str, int] = field(default_factory=dict)  # e.g. {"SRAM_total": bytes of the linked image}
    fields: dict = field(default_factory=dict)            # e.g. sections, code_bytes, stack_used_bytes


class Target(ABC):
    name: ClassVar[str]                      # the folder name, the --target value
    runs_programs: ClassVar[bool] = True     # can build and run a generated main (generate)
    kernels: Kernels = Kernels()
    clock_hz: int | None = None              # cycles -> seconds; None where nothing counts cycles
    counter_hz: float | None = None          # ticks per second of the HAL's td_cycles() in a program

    @property
    @abstractmethod
    def levels(self) -> dict[str, int | None]:
        """Memory levels and their sizes in bytes (None: unlimited); the first holds the arena."""

    @classmethod
    def load(cls, config_path: str | Path | None = None) -> "Target":
        """The target described by `--target-config FILE`; a target without options refuses one."""
        if config_path is not None:
            raise TinydeployError(f"--target-config: target {cls.name} takes no configuration")
        return cls()

    def placement(self, fp: "Footprint") -> dict[str, dict[str, int]]:
        """Where the data lives: level -> {part: bytes}. Default: all of it in the first level."""
        return {next(iter(self.levels)): {"weights": fp.weights, "arena": fp.arena, "state": fp.state,
                                           **fp.program}}

    def constant_limit(self) -> ConstLimit:
        """Bytes of constants (weights, folded values) the target can hold: the size of the memory
        level its weights are placed in, limits.HOST_CONST where that level is unbounded.
        Constant folding stops there with an error, before taking the memory."""
        from ..compiler import Footprint
        weights_at = [lv for lv, parts in self.placement(Footprint(1, 0, 0, 0)).items() if parts.get("weights")]
        bounded = [(self.levels[lv], lv) for lv in weights_at if self.levels[lv] is not None]
        if not bounded:
            return HOST_CONST
        nbytes, level = min(bounded)
        return ConstLimit(nbytes, f"{level} of target {self.name}")

    def homes(self, c: "Compiled") -> dict[str, str]:
        """The memory level each tensor lives in (inspect shows it). Default: the first level."""
        level = next(iter(self.levels))
        return {name: level for name in c.graph.tensors}

    def arena_level(self, c: "Compiled") -> str:
        """The memory level holding the activation arena (REPORT.json `memory`). Default: the first."""
        return next(iter(self.levels))

    def check_budget(self, fp: "Footprint") -> None:
        """Raise BudgetError, naming bytes needed and available, when the data does not fit a level.
        Code and stack use are known only after linking: a linker overflow is the same error."""
        what = "program" if fp.program else "model"
        for level, parts in self.placement(fp).items():
            have, need = self.levels[level], sum(parts.values())
            if have is not None and need > have:
                items = ", ".join(f"{k} {v:,}" + (f" incl. scratch {fp.scratch:,}" if k == "arena" else "")
                                  for k, v in parts.items())
                raise BudgetError(f"{self.name}: the {what} needs {need:,} bytes of {level} before code "
                                  f"({items}) but the target has {have:,}")

    def emit(self, c: "Compiled", out_dir: Path) -> "CProject":
        """The C project of a compiled network (`compile -o`); a target may place data its own way."""
        from ..compiler import emit_c
        return emit_c(c, out_dir)

    @abstractmethod
    def run(self, c: "Compiled", inputs: dict[str, np.ndarray], work: Path) -> tuple[dict[str, np.ndarray], Measured]:
        """Run the compiled network once on `inputs` (work: a scratch folder); outputs by name."""

    def run_program(self, prog: "CProgram", work: Path) -> tuple[dict[str, np.ndarray], str, Measured]:
        """Build and run a generated main; its result symbols (codegen.network.CProgram) and console."""
        raise TinydeployError(f"target {self.name} cannot run a generated program")

    def report(self) -> dict:
        """REPORT.json fields this target fills before running."""
        return {"target": self.name, "clock_hz": self.clock_hz}


class SimulatedTarget(Target):
    """A target described by a config value (`self.config`, a dataclass field of the subclass, loaded
    from --target-config by `config_class.load`) whose simulator counts cycles at the config's clock:
    td_cycles() in a program counts those cycles."""
    config_class: ClassVar[type]

    @property
    def clock_hz(self):
        return self.config.clock_hz

    @property
    def counter_hz(self):
        return self.config.clock_hz

    @classmethod
    def load(cls, config_path=None):
        return cls(cls.config_class.load(config_path))
