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
    """One pass in graph order: a dropped node's output is renamed to its input in every later node."""
    kept, rename = [], {}
    keep_names = set(graph.inputs) | set(graph.outputs)
    for node in graph.nodes:
        node.inputs = [rename.get(i, i) for i in node.inputs]
        out, src = node.outputs[0] if node.outputs else "", node.inputs[0] if node.inputs else ""
        if _is_noop(node, graph) and out not in graph.outputs and src not in keep_names:
            rename[out] = src
            continue
        kept.append(node)
    graph.nodes = kept
    return graph
