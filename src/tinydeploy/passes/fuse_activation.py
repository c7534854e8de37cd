"""Fuse Relu / Clip into the float kernel that produces their input (Conv, Gemm, MatMul): the kernel
clamps its result in the same pass over the output. Integer kernels get this in lower_qdq."""
from __future__ import annotations

import numpy as np

from ..ir import Graph

FUSABLE = {"Conv", "MatMul", "Gemm"}


def clip_bounds(node, graph: Graph):
    """(lo, hi) of a Relu or Clip with constant bounds; None if not fusable."""
    if node.op == "Relu":
        return 0.0, None
    if node.op != "Clip":
        return None
    if node.attr("_opset", 13) < 11:
        return node.attr("min", None), node.attr("max", None)
    lo = graph.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    hi = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if (len(node.inputs) > 1 and node.inputs[1] and lo is None) or (len(node.inputs) > 2 and node.inputs[2] and hi is None):
        return None
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


def fuse_activation(graph: Graph) -> Graph:
    drop = set()
    uses = graph.uses()
    for node in graph.nodes:
        if node.op not in FUSABLE or graph.tensors[node.outputs[0]].dtype != np.float32:
            continue
        users = uses.consumers(node.outputs[0])
        if len(users) != 1 or node.outputs[0] in graph.outputs or "act" in node.attrs:
            continue
        act = users[0]
        bounds = clip_bounds(act, graph)
        if bounds is None:
            continue
        node.attrs["act"] = bounds
        node.outputs = [act.outputs[0]]
        drop.add(id(act))
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    return graph
