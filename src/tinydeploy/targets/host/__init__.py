"""The host target: plain C99 with the host compiler (gcc, or clang from the ziglang wheel), run
natively. Memory is unlimited; nothing counts cycles; a program's td_cycles() is a nanosecond wall
clock, so `generate` reports tokens/s from it."""
from __future__ import annotations

import subprocess
from pathlib import Path

from ..base import Measured, Target


class HostTarget(Target):
    name = "host"
    counter_hz = 1e9    # hal_host.c: td_cycles() in nanoseconds (CLOCK_MONOTONIC)

    @property
    def levels(self):
        return {"host": None}

    def __repr__(self) -> str:
        return "HostTarget()"

    def run(self, c, inputs, work: Path):
        from ...compiler import emit_c
        from . import runner
        return runner.run(emit_c(c, work / "c"), c.graph, inputs, work), Measured()

    def run_program(self, prog, work: Path, argv: tuple[str, ...] = ()):
        """`argv`: more program arguments after the results file (e.g. generate's logits dump)."""
        from ...errors import TinydeployError
        from .runner import build
        work.mkdir(parents=True, exist_ok=True)
        exe = build(prog.project, prog.main_c, work / "program", extra=["-DTD_HOST"])
        results = work / "results.bin"
        r = subprocess.run([str(exe), str(results), *argv], capture_output=True, timeout=600)
        if r.returncode != 0:
            raise TinydeployError(f"host: the program failed with exit code {r.returncode}")
        return prog.parse_results(results.read_bytes()), r.stdout.decode("utf-8", "replace"), Measured()


TARGET = HostTarget
