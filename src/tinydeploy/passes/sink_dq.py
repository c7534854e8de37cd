"""DequantizeLinear moved after the ops it commutes with, so each op that needs it sees it.

Exporters put data movement and unobserved activations between a DequantizeLinear and the op
that consumes it (torch.onnx: DQ → Flatten → Gemm, DQ → Relu → Conv; weights as DQ(W) → Transpose);
lower_qdq's patterns want DequantizeLinear right before the op.
"""
from __future__ import annotations

import numpy as np

from ..golden import run_graph
from ..ir import Graph, Node, Quant, Tensor
from ..ir.graph import Uses
from .fuse_activation import clip_bounds
from .lower_qdq import dq_quant

# data movement that DequantizeLinear commutes with (per-tensor quantization moves with the data)
MOVES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"}
# ops that commute with a per-tensor DequantizeLinear (monotonic) when no QuantizeLinear follows them
MONOTONIC = {"Relu", "Clip", "MaxPool", "GlobalMaxPool"}


def _grid_bound(v, q: Quant, low: bool):
    """The int8 value whose dequantized value is exactly v (a Clip bound), None if v lies beyond
    the int8 range on its side (never binds), or False if v falls between two grid values."""
    if v is None:
        return None
    s, z = np.float32(q.scale[0]), int(q.zero_point[0])
    k = int(np.clip(np.rint(np.float64(v) / s) + z, -1000, 1000))
    if (np.float32(k - z) * s == np.float32(v)) and -128 <= k <= 127:
        return k
    edge = np.float32((-128 if low else 127) - z) * s
    return None if (v <= edge if low else v >= edge) else False


def _sunk(node: Node, graph: Graph, x: str, q: Quant, moved: str, uses: Uses) -> Node | None:
    """`node` rewritten to run on the int8 tensor x (writing `moved`), or None."""
    if node.op in MOVES or node.op in ("MaxPool", "GlobalMaxPool"):
        if node.op not in MOVES and (len(node.outputs) > 1 and node.outputs[1]
                                     or any(c.op == "QuantizeLinear" for c in uses.consumers(node.outputs[0]))):
            return None   # a QuantizeLinear after it: QMaxPool's own lowering (it may rescale)
        return Node(node.op, node.name, [x] + node.inputs[1:], [moved], dict(node.attrs))
    if any(c.op == "QuantizeLinear" for c in uses.consumers(node.outputs[0])):
        return None       # Relu / Clip → QuantizeLinear: a lookup table (passes/lut.py)
    lo, hi = clip_bounds(node, graph) or (False, False)
    lo, hi = _grid_bound(lo, q, True), _grid_bound(hi, q, False)
    if lo is False or hi is False:
        return None
    bound = lambda v, k: "" if v is None else graph.add_const(f"{node.name}_{k}", np.array(v, np.int8))  # noqa: E731
    return Node("Clip", node.name, [x, bound(lo, "lo"), bound(hi, "hi")], [moved], {"_opset": 13})


def sink_dq(graph: Graph) -> Graph:
    """DequantizeLinear → data movement (Reshape, Flatten, Squeeze, Unsqueeze, Transpose) or a
    monotonic op with no QuantizeLinear after it (Relu, Clip on grid values, MaxPool)  ⇒  the op on
    the int8 tensor, then DequantizeLinear: the same values, and the consumer sees a
    DequantizeLinear again, as the QDQ patterns need (torch.onnx writes DQ → Flatten → Gemm and,
    for an unobserved ReLU, DQ → Relu → Conv; weights may come as DQ(W) → Transpose). A moved
    constant is moved now; a per-axis one only through Transpose (its axis follows)."""
    new = []
    producer = {o: n for n in graph.nodes for o in n.outputs}   # kept current: sinking chains
    uses = graph.uses()   # consumers of the original outputs: rewriting keeps them
    for node in graph.nodes:
        sinks = (node.op in MOVES or node.op in MONOTONIC) and node.inputs
        dq = producer.get(node.inputs[0]) if sinks else None
        q = dq_quant(dq, graph) if dq is not None and dq.op == "DequantizeLinear" else None
        x = dq.inputs[0] if q is not None else None
        const = x is not None and graph.tensors[x].is_const
        if q is None or graph.tensors[x].dtype != np.int8 or q.per_channel and not (const and node.op == "Transpose"):
            new.append(node)
            continue
        y = node.outputs[0]
        moved = graph.unique(f"{y}_int8")
        graph.tensors[moved] = Tensor(moved, graph.tensors[y].shape, np.dtype(np.int8))
        op = _sunk(node, graph, x, q, moved, uses)
        if op is None:
            del graph.tensors[moved]
            new.append(node)
            continue
        attrs = {}
        if q.per_channel:
            rank = len(graph.tensors[x].shape)
            perm = node.attr("perm") or list(range(rank))[::-1]
            attrs["axis"] = [p % rank for p in perm].index(q.axis % rank)
        if const:
            graph.tensors[moved].data = run_graph(Graph("move", graph.tensors, [op], [], [moved]), {})[moved]
        else:
            new.append(op)
        new.append(Node("DequantizeLinear", f"{node.name}_dq", [moved] + dq.inputs[1:], [y], attrs))
        producer[y] = new[-1]
    graph.nodes = new
    graph.prune()
    return graph
