"""Split of a dequantized tensor → one Slice per output, so each output (with its own QuantizeLinear)
lowers alone like any single-output data movement; the copies made are the same."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..ops.shape import split_sizes


def split_to_slices(graph: Graph) -> Graph:
    new = []
    uses = graph.uses()
    for node in graph.nodes:
        p = uses.producer(node.inputs[0]) if node.op == "Split" else None
        if p is None or p.op != "DequantizeLinear":
            new.append(node)
            continue
        shape = graph.tensors[node.inputs[0]].shape
        axis, sizes = split_sizes(node, graph, shape)
        pos = 0
        for k, (o, sz) in enumerate(zip(node.outputs, sizes)):
            if o:
                consts = [graph.add_const(f"{node.name}_{what}{k}", np.array([v], np.int64))
                          for what, v in (("start", pos), ("end", pos + sz), ("axis", axis))]
                new.append(Node("Slice", f"{node.name}_{k}", [node.inputs[0]] + consts, [o],
                                {"_opset": max(node.attr("_opset", 13), 10)}))
            pos += sz
    graph.nodes = new
    return graph
