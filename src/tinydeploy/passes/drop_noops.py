"""Remove nodes that compute nothing: Identity, Dropout (inference), a Reshape/Flatten/Squeeze/
Unsqueeze whose output shape equals its input shape, a Transpose with the identity permutation and
a Cast to the same type. Consumers are rewired to the input."""
from __future__ import annotations

from ..ir import Graph

_SHAPE_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _is_noop(node, graph: Graph) -> bool:
    if not node.inputs or not node.inputs[0]:
        return False
    src, dst = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    if src.dtype != dst.dtype or src.shape != dst.shape:
        return False
    if node.op in ("Identity",) or node.op in _SHAPE_OPS or node.op == "Cast":
        return True
    if node.op == "Dropout":
        return len([o for o in node.outputs if o]) == 1
    if node.op == "Transpose":
        perm = node.attr("perm")
        return perm is None and len(src.shape) <= 1 or perm is not None and list(perm) == sorted(perm)
    return False


def drop_noops(graph: Graph) -> Graph:
    kept = []
    for node in graph.nodes:
        out, src = node.outputs[0] if node.outputs else "", node.inputs[0] if node.inputs else ""
        if _is_noop(node, graph) and out not in graph.outputs and src not in graph.inputs + graph.outputs:
            for n in graph.nodes:
                n.inputs = [src if i == out else i for i in n.inputs]
            continue
        kept.append(node)
    graph.nodes = kept
    return graph
