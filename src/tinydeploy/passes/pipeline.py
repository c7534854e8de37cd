"""The pass order, in one place. Each pass: Graph -> Graph."""
from __future__ import annotations

from ..ir import Graph
from .complete_types import complete_types
from .drop_noops import drop_noops
from .fold_constants import fold_constants
from .fuse_activation import fuse_activation
from .lower_qdq import lower_qdq
from .validate_ops import validate_ops

PASSES = [
    validate_ops,       # every op known, before any work is done
    fold_constants,     # first where shapes are known: ops whose parameters must be constant can run
    complete_types,     # static shapes everywhere (golden model on zeros where ONNX could not)
    fold_constants,     # shape subgraphs and constant expressions → initializers
    drop_noops,         # identity / no-op reshape, transpose, cast
    lower_qdq,          # DequantizeLinear → op → QuantizeLinear  →  integer kernels
    fuse_activation,    # Relu / Clip into the producing float kernel
]


def lower(graph: Graph) -> Graph:
    for p in PASSES:
        graph = p(graph)
    graph.prune()
    graph.validate()
    return graph
