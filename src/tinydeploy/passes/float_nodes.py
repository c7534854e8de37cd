"""Which nodes of a lowered graph still compute in float (an analysis, not a rewrite).

A node runs in float when it reads or writes a float tensor and is not free data movement (an
alias). The float edges of a quantized model's interface are not counted: the QuantizeLinear of a
float graph input and the DequantizeLinear of a float graph output (with any data movement between
them and the graph edge) convert the interface the model declares, and run as integer table
kernels. Everything else that is float in a quantized graph is a float island: what REPORT.json's
`float_nodes` lists, `compile` / `run` warn about and `--integer-only` refuses.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Graph
from ..ops import registry

MOVES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"}


def _is_float(graph: Graph, name: str) -> bool:
    return bool(name) and np.dtype(graph.tensors[name].dtype).kind == "f"


def _interface(graph: Graph) -> set[str]:
    """Float tensors that are graph inputs / outputs or reach one through data movement only."""
    edge = {n for n in graph.inputs + graph.outputs if _is_float(graph, n)}
    changed = True
    while changed:
        changed = False
        for n in graph.nodes:
            if n.op in MOVES and _is_float(graph, n.inputs[0]):
                pair = {n.inputs[0], n.outputs[0]}
                if pair & edge and not pair <= edge:
                    edge |= pair
                    changed = True
    return edge


def is_quantized(graph: Graph) -> bool:
    """A graph with integer semantics: quantize / dequantize nodes or 8-bit tensors after lowering."""
    return any(n.op in ("QuantizeLinear", "DequantizeLinear") for n in graph.nodes) or any(
        np.dtype(t.dtype) in (np.int8, np.uint8) for t in graph.tensors.values() if not t.is_const)


def float_nodes(graph: Graph) -> list[dict]:
    """[{name, op, macs}] of every node left in float, in execution order (interface edges excluded)."""
    edge = _interface(graph)
    out = []
    for n in graph.nodes:
        ios = [t for t in n.inputs + n.outputs if _is_float(graph, t)]
        if not ios or registry.get(n).alias:
            continue
        if n.op == "QuantizeLinear" and n.inputs[0] in edge or n.op == "DequantizeLinear" and n.outputs[0] in edge \
                or n.op in MOVES and set(ios) <= edge:
            continue
        out.append({"name": n.name, "op": n.op, "macs": registry.node_macs(n, graph)})
    return out


def summary(nodes: list[dict], limit: int = 3) -> str:
    """'N nodes (M MACs) run in float: a (Op), b (Op), …', the nodes with most MACs named first."""
    top = sorted(nodes, key=lambda d: -d["macs"])[:limit]
    names = ", ".join(f"{d['name']} ({d['op']})" for d in top) + (", …" if len(nodes) > limit else "")
    macs = sum(d["macs"] for d in nodes)
    return f"{len(nodes)} node{'s' * (len(nodes) != 1)} ({macs:,} MACs) run in float: {names}"


def require_integer(graph: Graph) -> None:
    """--integer-only: a float island (or a float model) is a compile error naming its nodes."""
    nodes = float_nodes(graph)
    if nodes:
        what = "" if is_quantized(graph) else "the model is not quantized: "
        raise TinydeployError(f"--integer-only: {what}{summary(nodes, limit=8)}")
