"""Constant folding: a node whose inputs are all constant becomes a constant (shape subgraphs,
precomputed weights). Shape and Size fold from static shapes alone. DequantizeLinear of an integer
weight is kept: the QDQ lowering needs the integer values and their scales."""
from __future__ import annotations

import math

import numpy as np

from ..golden import run_graph
from ..ir import Graph, Node
from ..limits import check_constants


def _keep(node, graph: Graph, uses) -> bool:
    return node.op == "DequantizeLinear" and any(uses.consumers(o) for o in node.outputs) and \
        np.dtype(graph.tensors[node.inputs[0]].dtype).kind in "iu"


def fold_constants(graph: Graph) -> Graph:
    kept = []
    uses = graph.uses()   # asked only about a node's own outputs, before their consumers change
    held = sum(t.nbytes for t in graph.tensors.values() if t.is_const)   # constants in memory so far
    for node in graph.nodes:
        like = graph.tensors[node.inputs[1]] if node.op == "CastLike" else None
        if like is not None and like.dtype is not None:   # only the example's type matters
            import onnx.helper
            node.op, node.inputs = "Cast", node.inputs[:1]
            node.attrs["to"] = int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(like.dtype)))
        if node.op in ("Shape", "Size") and graph.tensors[node.inputs[0]].shape is not None:
            shape = graph.tensors[node.inputs[0]].shape
            if node.op == "Size":
                value = np.array(math.prod(shape), np.int64)
            else:
                s, e = node.attr("start", 0), node.attr("end", None)
                value = np.array(shape[s:e] if e is not None else shape[s:], np.int64)
            _set(graph, node.outputs[0], value)
            continue
        if node.inputs and all(not i or graph.tensors[i].is_const for i in node.inputs) and not _keep(node, graph, uses):
            for o in filter(None, node.outputs):   # checked before any memory is taken, where known
                expected = _expected_size(graph, o)
                if expected is not None:
                    _check_fold(node, o, *expected, held, graph.const_limit)
            sub = type(graph)(graph.name, graph.tensors, [node], [], [o for o in node.outputs if o])
            for name, value in run_graph(sub, {}).items():
                value = np.asarray(value)
                _check_fold(node, name, list(value.shape), value.nbytes, held, graph.const_limit)
                held += value.nbytes
                _set(graph, name, value)
            continue
        kept.append(node)
    # an output that folded to a constant is still written by the network: copy it from flash
    for o in graph.outputs:
        t = graph.tensors[o]
        if t.is_const:
            src = graph.add_const(o + "_value", t.data)
            t.data = None
            kept.append(Node("Identity", f"{o}_const", [src], [o]))
    graph.nodes = kept
    graph.prune()
    return graph


def _check_fold(node: Node, name: str, shape: list[int], nbytes: int, held: int, limit) -> None:
    check_constants(f"node {node.name} ({node.op}) folds to '{name}' {shape} ({nbytes:,} bytes, beside "
                    f"{held:,} bytes of constants)", held + nbytes, limit)


def _expected_size(graph: Graph, name: str) -> tuple[list[int], int] | None:
    """(shape, bytes) of a tensor before it is computed: its type if known, else the first complete
    shape the model or ONNX inference states (a wrong statement is refused in complete_types)."""
    t = graph.tensors[name]
    for dims, dtype, *_ in [(t.shape, t.dtype)] + graph.stated.get(name, []):
        if dims is not None and dtype is not None and None not in dims:
            return list(dims), math.prod(dims) * np.dtype(dtype).itemsize
    return None


def _set(graph: Graph, name: str, value: np.ndarray) -> None:
    t = graph.tensors[name]
    t.data, t.shape, t.dtype = value, tuple(value.shape), value.dtype
