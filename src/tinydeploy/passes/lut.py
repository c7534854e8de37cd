"""Elementwise regions → one 256-entry lookup table.

A QuantizeLinear whose input is computed, through elementwise float ops with scalar constants only,
from a single int8 tensor (via DequantizeLinear) is a function of 256 possible values: evaluate the
region once per value with the float golden ops (as ONNX Runtime would, in float32), quantize with
round-half-to-even and saturation, and store the table. Exact for Sigmoid, Tanh, GELU (also
decomposed with Erf), SiLU, LeakyRelu, Relu, Clip, HardSwish, … at no run-time float cost."""
from __future__ import annotations

import numpy as np

from ..golden import run_graph
from ..ir import Graph, Node, Tensor
from ..ir.graph import Uses

ELEMENTWISE = {
    "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Abs", "Neg",
    "HardSigmoid", "HardSwish", "Gelu", "Softplus", "Softsign", "Elu", "Selu", "Celu", "Mish",
    "Mul", "Add", "Sub", "Div", "Pow", "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos",
    "ThresholdedRelu", "PRelu", "Identity", "Max", "Min",
    "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Cosh", "Sinh", "Tan", "Sign", "Shrink", "Swish",
}


def _region(q: Node, graph: Graph, uses: Uses):
    """(dq node, region nodes in graph order) or None."""
    nodes: list[Node] = []
    dq = None
    stack = [q.inputs[0]]
    seen = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        p = uses.producer(name)
        if p is None:
            return None
        if p.op == "DequantizeLinear":
            if dq is not None and dq is not p:
                return None
            dq = p
            continue
        if p.op not in ELEMENTWISE or len(p.outputs) != 1:
            return None
        for i in p.inputs:
            if not i:
                continue
            t = graph.tensors[i]
            if t.is_const:
                if t.size != 1:
                    return None
            else:
                stack.append(i)
        nodes.append(p)
    if dq is None or not nodes:
        return None
    x = graph.tensors[dq.inputs[0]]
    if x.dtype != np.int8 or x.is_const or graph.const(dq.inputs[1]) is None or graph.const(dq.inputs[1]).size != 1:
        return None
    if graph.tensors[q.inputs[0]].shape != x.shape:
        return None
    inside = {id(n) for n in nodes} | {id(q)}
    for n in nodes:  # intermediate values must not escape the region
        if n.outputs[0] in graph.outputs or any(id(u) not in inside for u in uses.consumers(n.outputs[0])):
            return None
    return dq, uses.in_order(nodes)


def lut_table(dq: Node, region: list[Node], q: Node, graph: Graph) -> np.ndarray:
    x = np.arange(-128, 128, dtype=np.int8)
    nodes = [dq] + region + [q]
    tensors = {n: graph.tensors[n] for node in nodes for n in node.inputs + node.outputs if n}  # not all: linear
    tensors[dq.inputs[0]] = Tensor(dq.inputs[0], (256,), np.dtype(np.int8))
    sub = Graph("lut", tensors, nodes, [dq.inputs[0]], [q.outputs[0]])
    return run_graph(sub, {dq.inputs[0]: x})[q.outputs[0]].astype(np.int8)


def lower_luts(graph: Graph) -> Graph:
    replace: dict[int, Node] = {}
    drop: set[int] = set()
    uses = graph.uses()
    for q in graph.nodes:
        if q.op != "QuantizeLinear" or graph.tensors[q.outputs[0]].dtype != np.int8:
            continue
        scale = graph.const(q.inputs[1])
        if scale is None or scale.size != 1:
            continue
        found = _region(q, graph, uses)
        if found is None:
            continue
        dq, region = found
        table = lut_table(dq, region, q, graph)
        replace[id(q)] = Node("QLut", q.name + "_lut", [dq.inputs[0]], [q.outputs[0]], {"table": table})
        drop.update(id(n) for n in region)
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes if id(n) not in drop]
    graph.prune()
    return graph
