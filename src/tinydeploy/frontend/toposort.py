"""Topological order of an ONNX graph, with a clear error for cycles."""
from __future__ import annotations

from collections import deque

import onnx

from ..errors import TinydeployError


def toposort(g: onnx.GraphProto) -> list[onnx.NodeProto]:
    producer = {o: k for k, n in enumerate(g.node) for o in n.output if o}
    deps = [{producer[i] for i in n.input if i in producer} for n in g.node]
    users: list[list[int]] = [[] for _ in g.node]
    for k, d in enumerate(deps):
        for p in d:
            users[p].append(k)
    pending = [len(d) for d in deps]
    ready = deque(k for k, c in enumerate(pending) if c == 0)
    order = []
    while ready:
        k = ready.popleft()
        order.append(k)
        for u in users[k]:
            pending[u] -= 1
            if pending[u] == 0:
                ready.append(u)
    if len(order) != len(g.node):
        stuck = next(k for k, c in enumerate(pending) if c > 0)
        n = g.node[stuck]
        raise TinydeployError(f"the graph has a cycle through node {n.name or n.op_type} ({n.op_type})")
    return [g.node[k] for k in order]
