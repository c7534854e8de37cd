"""The pass order, in one place. Each pass: Graph -> Graph."""
from __future__ import annotations

from ..ir import Graph
from ..limits import check_constants
from .complete_types import complete_types
from .drop_noops import drop_noops
from .fold_constants import fold_constants
from .fold_int_clips import fold_int_clips
from .fuse_activation import fuse_activation
from .integerize import integerize
from .lower_qdq import lower_qdq
from .lut import lower_luts
from .sink_dq import sink_dq
from .split_to_slices import split_to_slices
from .to_int8 import to_int8
from .row_blocks import row_blocks
from .validate_ops import validate_ops

PASSES = [
    validate_ops,       # every op known, before any work is done
    fold_constants,     # first where shapes are known: ops whose parameters must be constant can run
    complete_types,     # static shapes everywhere (golden model on zeros where ONNX could not)
    fold_constants,     # shape subgraphs and constant expressions → initializers
    drop_noops,         # identity / no-op reshape, transpose, cast
    integerize,         # float32 tensors holding integers (integer graph inputs given) -> integer tensors
    to_int8,            # uint8 tensors → int8 (q − 128, zero point − 128); conversions at uint8 edges
    sink_dq,            # DequantizeLinear after data movement / unobserved Relu it commutes with
    lower_luts,         # elementwise float regions between DequantizeLinear and QuantizeLinear → 256-entry tables
    split_to_slices,    # Split of a dequantized tensor → one Slice per output, each lowered alone
    lower_qdq,          # DequantizeLinear → op → QuantizeLinear  →  integer kernels
    fold_int_clips,     # int8 Clip after an integer kernel → its clamp bounds
    fuse_activation,    # Relu / Clip into the producing float kernel
    row_blocks,         # runs of row-wise ops -> regions computed in blocks of rows (a schedule)
]


def lower(graph: Graph) -> Graph:
    for p in PASSES:
        graph = p(graph)
    graph.prune()
    graph.validate()
    check_constants("the model's weights and folded constants",
                    sum(t.nbytes for t in graph.tensors.values() if t.is_const), graph.const_limit)
    return graph
