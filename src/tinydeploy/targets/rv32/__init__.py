"""rv32: one RV32IMC[F] core MCU with one SRAM, run in an instruction-exact simulator.

Public API: `from tinydeploy.targets.rv32.runner import build, simulate, Rv32Config`; the target
protocol (targets/base.py): `Rv32Target(Rv32Config(...))`, or `Rv32Target.load("board.toml")`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..base import Measured, SimulatedTarget
from .config import Rv32Config


@dataclass(frozen=True)
class Rv32Target(SimulatedTarget):
    name = "rv32"
    config: Rv32Config = field(default_factory=Rv32Config)
    config_class = Rv32Config

    @property
    def levels(self):
        return {"SRAM": self.config.sram_bytes}

    def placement(self, fp):
        return {"SRAM": {**super().placement(fp)["SRAM"], "stack": self.config.stack_bytes}}

    def run(self, c, inputs, work: Path):
        from ...compiler import emit_c
        from . import network_run
        outs, m = network_run.run(emit_c(c, work / "c"), c.graph, inputs, work, self.config)
        return outs, Measured(m["cycles"], m["layer_cycles"], {"SRAM_total": m["sram_used_bytes"]},
                              {"sections": m["sections"], "code_bytes": m["code_bytes"],
                               "stack_used_bytes": m["stack_used_bytes"]})

    def run_program(self, prog, work: Path):
        """TD_PROFILE: the network counts cycles per layer (one counter read each, ~10 instructions)."""
        from ...errors import TinydeployError
        from .runner import build, simulate
        b = build([prog.main_c] + prog.project.sources, prog.project.include_dirs, work / "rv32", self.config,
                  {"TD_PROFILE": "1"})
        sim = simulate(b, self.config)
        if sim.exit_code != 0:
            raise TinydeployError(f"rv32: the program exited with code {sim.exit_code}: {sim.console.strip()[:200]}")
        values = {name: sim.read_array(name, np.dtype(dt))[:n].copy() for name, (dt, n) in prog.results.items()}
        return values, sim.console, Measured(sim.instructions, None, {"SRAM_total": b.sram_used_bytes},
                                             {"sections": b.sections, "code_bytes": b.code_bytes,
                                              "stack_used_bytes": sim.stack_used_bytes})

    def report(self):
        return {**super().report(), "march": self.config.march}


TARGET = Rv32Target
