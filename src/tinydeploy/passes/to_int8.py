"""uint8 quantized tensors → int8: q_u8 with zero point z is q_u8 - 128 with zero point z - 128
(same real values, same saturation), so every integer kernel is written for int8 only.

Applied at the edges of quantized regions: QuantizeLinear outputs, DequantizeLinear inputs and their
zero points. A uint8 graph input/output gets a conversion node (U8ToS8 / S8ToU8: x ^ 0x80)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor


def _shift(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.int16) - 128).astype(np.int8)


def to_int8(graph: Graph) -> Graph:
    uint8 = lambda n: n and graph.tensors[n].dtype == np.uint8  # noqa: E731
    targets: set[str] = set()
    for node in graph.nodes:
        if node.op in ("DequantizeLinear", "QuantizeLinear") and not all(
                graph.tensors[i].is_const for i in node.inputs[1:3] if i):
            continue   # run-time scale or zero point: stays a uint8 float kernel (a shifted zp would be wrong)
        if node.op == "DequantizeLinear":
            targets.update(n for n in node.inputs[:1] + node.inputs[2:3] if uint8(n))
        elif node.op == "QuantizeLinear":
            targets.update(n for n in node.outputs[:1] + node.inputs[2:3] if uint8(n))
    _through_data_movement(graph, targets)
    if not targets:
        return graph
    new_nodes: list[Node] = []
    rename: dict[str, str] = {}   # uint8 activation → its int8 twin, applied to every later reader
    for name in graph.inputs:
        if name in targets:
            rename[name] = _retarget(graph, name)
            new_nodes.append(Node("U8ToS8", f"{name}_to_s8", [name], [rename[name]]))
    for node in graph.nodes:
        node.inputs = [rename.get(i, i) for i in node.inputs]
        for i in node.inputs:
            if i in targets and graph.tensors[i].is_const and graph.tensors[i].dtype == np.uint8:
                t = graph.tensors[i]
                t.data, t.dtype = _shift(t.data), np.dtype(np.int8)
        new_nodes.append(node)
        for k, o in enumerate(node.outputs):
            if o in targets:
                s8 = rename[o] = _retarget(graph, o)
                node.outputs[k] = s8
                if o in graph.outputs:
                    new_nodes.append(Node("S8ToU8", f"{o}_to_u8", [s8], [o]))
    graph.nodes = new_nodes
    return graph


# ops that move uint8 values without looking at them (MaxPool: order is the same after the shift;
# Clip with constant bounds, shifted too: torch's reduce_range fake-quant writes Q → Clip(0, 127) → DQ)
_PASS_THROUGH = {"MaxPool", "GlobalMaxPool", "Clip", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                 "Identity", "Slice", "Split", "Gather", "Tile", "Expand"}


def _through_data_movement(graph: Graph, targets: set[str]) -> None:
    """A QOperator graph runs MaxPool / Reshape / … on the uint8 tensors themselves: their data input
    and outputs must change type together (else an int8 tensor would feed a uint8-typed one)."""
    uint8 = lambda n: n and graph.tensors[n].dtype == np.uint8 and not graph.tensors[n].is_const  # noqa: E731
    parent: dict[str, str] = {}   # union-find: tensors joined by such ops

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = x = parent[parent[x]]
        return x

    for node in graph.nodes:
        if node.op in _PASS_THROUGH and node.inputs:
            group = [n for n in node.inputs[:1] + node.outputs if uint8(n)]
            for n in group[1:]:
                parent[find(n)] = find(group[0])
    hit = {find(t) for t in targets if t in parent}
    targets.update(n for n in list(parent) if find(n) in hit)
    for node in graph.nodes:   # a Clip's constant bounds shift with its data
        if node.op == "Clip" and node.inputs[0] in targets:
            targets.update(n for n in node.inputs[1:] if n and graph.tensors[n].dtype == np.uint8)


def _s8_name(graph: Graph, name: str) -> str:
    return f"{name}__s8"


def _retarget(graph: Graph, name: str) -> str:
    """Create the int8 twin of a uint8 activation tensor."""
    new = _s8_name(graph, name)
    t = graph.tensors[name]
    graph.tensors[new] = Tensor(new, t.shape, np.dtype(np.int8))
    return new
