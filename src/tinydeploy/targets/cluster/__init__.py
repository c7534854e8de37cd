"""cluster: N RV32IMC[F] cores sharing an L1 scratchpad, an L2 behind a DMA, a hardware barrier;
run on one unicorn engine per core with modelled cycles (README.md).

The target protocol (targets/base.py): `ClusterTarget(ClusterConfig(...))` or
`ClusterTarget.load("cluster.toml")`. The simulator's API: `from tinydeploy.targets.cluster.runner
import build, simulate, ClusterConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...ops.attention import kv_caches
from ...ops.kernels import Kernels
from ..base import Measured, SimulatedTarget
from .config import ClusterConfig


@dataclass(frozen=True)
class ClusterTarget(SimulatedTarget):
    name = "cluster"
    config: ClusterConfig = field(default_factory=ClusterConfig)
    config_class = ClusterConfig

    @property
    def kernels(self):
        return Kernels(cores=self.config.cores)   # per-core scratch (attention's scores) for every core

    @property
    def levels(self):
        return self.config.memory_levels

    def placement(self, fp):
        """L1: the arena (activations, scratch), state, the two weight buffers (weighted layers use
        them in turn: each is as large as its largest layer), one stack per core; L2: every constant
        (and a program's data). Code and constant tables sit in L2 too, known after linking.
        In tiling mode (those do not fit L1, or `tiling = "always"`) the arena is in L2 and L1
        holds the tile buffers, sized when the tile loops are emitted (the linker checks them)."""
        cfg = self.config
        buffers = sum(max(fp.node_weights[i::2], default=0) for i in (0, 1))
        kv = {"KV window": fp.kv_window} if fp.kv_state else {}
        far = {"KV cache": fp.kv_state} if fp.kv_state else {}
        stacks = cfg.cores * cfg.stack_bytes
        l1 = {"arena": fp.arena, "state": fp.state - fp.kv_state, **kv, "weight buffers": buffers, "stacks": stacks}
        # state (a KV cache) and row-block loops have no tile loops: such a model keeps the L1 budget error
        if cfg.tiling == "never" or (cfg.tiling == "auto" and (sum(l1.values()) <= cfg.l1_bytes or fp.state)):
            return {"L1": l1, "L2": {"weights": fp.weights, **far, **fp.program}}
        return {"L1": {"state": fp.state - fp.kv_state, **kv, "stacks": stacks},
                "L2": {"arena": fp.arena, "weights": fp.weights, **far, **fp.program}}

    def arena_level(self, c):
        from .network import tiled
        return "L2" if tiled(c, self.config) else "L1"

    def homes(self, c):
        """Constants in L2 (moved per layer into an L1 weight buffer), KV caches in L2 (one layer's rows
        moved into an L1 window); activations, scratch and other state in L1, or in tiling mode
        activations in L2 too (moved tile by tile)."""
        kv, act = kv_caches(c.graph), self.arena_level(c)
        return {n: "L2" if t.is_const or n in kv else act for n, t in c.graph.tensors.items()}

    def emit(self, c, out_dir: Path):
        from .network import emit
        return emit(c, out_dir, self.config)[0]

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
