"""cluster: N RV32IMC[F] cores sharing an L1 scratchpad, an L2 behind a DMA, a hardware barrier;
run on one unicorn engine per core with modelled cycles (README.md).

The target protocol (targets/base.py): `ClusterTarget(ClusterConfig(...))` or
`ClusterTarget.load("cluster.toml")`. The simulator's API: `from tinydeploy.targets.cluster.runner
import build, simulate, ClusterConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..base import Measured, Target
from .config import ClusterConfig


@dataclass(frozen=True)
class ClusterTarget(Target):
    name = "cluster"
    config: ClusterConfig = field(default_factory=ClusterConfig)

    @property
    def levels(self):
        return self.config.memory_levels

    @property
    def clock_hz(self):
        return self.config.clock_hz

    @property
    def counter_hz(self):   # td_cycles() counts modelled cluster cycles
        return self.config.clock_hz

    @classmethod
    def load(cls, config_path=None):
        return cls(ClusterConfig.load(config_path))

    def placement(self, fp):
        """L1: the arena (activations, scratch), state, two weight buffers of the largest layer's
        constants, one stack per core; L2: every constant (and a program's data). Code and constant
        tables sit in L2 too and are known after linking."""
        cfg = self.config
        return {"L1": {"arena": fp.arena, "state": fp.state, "weight buffers": 2 * fp.layer_weights,
                       "stacks": cfg.cores * cfg.stack_bytes},
                "L2": {"weights": fp.weights, **fp.program}}

    def emit(self, c, out_dir: Path):
        from .network import emit
        return emit(c, out_dir)[0]

    def run(self, c, inputs, work: Path):
        from .network import run
        return run(c, inputs, work, self.config)

    def run_program(self, prog, work: Path):
        from .network import run_program
        return run_program(prog, work, self.config)

    def report(self):
        cfg = self.config
        return {**super().report(), "march": cfg.march, "cores": cfg.cores,
                "levels": {"L1": cfg.l1_bytes, "L2": cfg.l2_bytes},
                "dma": {"latency": cfg.dma_latency, "bytes_per_cycle": cfg.dma_bytes_per_cycle}}


TARGET = ClusterTarget
