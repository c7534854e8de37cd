"""Refuse unknown operators up front, naming the node (before shapes or folding touch it)."""
from __future__ import annotations

from ..ir import Graph
from ..ops import registry


def validate_ops(graph: Graph) -> Graph:
    for node in graph.nodes:
        registry.get(node)  # raises the one-line error
    return graph
