"""The golden target: the numpy golden model (golden.py), the C kernels' exact arithmetic run op by op
on the host. No C is built, so it runs networks but not generated programs."""
from __future__ import annotations

from ..base import Measured, Target


class GoldenTarget(Target):
    name = "golden"
    runs_programs = False

    @property
    def levels(self):
        return {"host": None}

    def __repr__(self) -> str:
        return "GoldenTarget()"

    def run(self, c, inputs, work):
        from ...golden import run_graph
        return run_graph(c.graph, inputs), Measured()


TARGET = GoldenTarget
