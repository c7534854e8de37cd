"""From a graph to the planner's input: one Buffer per activation (alias groups merged), one per
node that needs scratch (its kernel's padded copies, transform tiles, ...), in-place hints.

Step k+1 runs node k; graph inputs are live from step 0, graph outputs past the last step; a node's
scratch lives at its step only. An alias op (Reshape, Flatten, …) makes its output the same bytes
as its input: one group, one buffer; so does an in-place node of a row block whose input dies there
(schedule/blocks.py). Inside a row block, internal buffers hold one block of rows and external ones
live through the whole block loop (a node's scratch, used within one block, stays at its step).
"""
from __future__ import annotations

from ..ir import Graph
from ..ops import registry
from ..ops.kernels import Kernels
from .blocks import block_aliases, regions
from .liveness import Buffer, InPlace


def alias_roots(graph: Graph) -> dict[str, str]:
    """tensor name → name of the buffer that holds it."""
    root: dict[str, str] = {}
    merged = block_aliases(graph)
    for node in graph.nodes:
        if (registry.get(node).alias and not graph.tensors[node.inputs[0]].is_const) or node.outputs[0] in merged:
            root[node.outputs[0]] = root.get(node.inputs[0], node.inputs[0])
    return root


def graph_buffers(graph: Graph, kernels: Kernels | None = None
                  ) -> tuple[list[Buffer], list[InPlace], dict[str, str], dict[int, str]]:
    """Buffers, in-place hints, tensor → buffer name, node index → its scratch buffer's name."""
    root = alias_roots(graph)
    r = lambda n: root.get(n, n)  # noqa: E731
    last = len(graph.nodes)
    start: dict[str, int] = {r(n): 0 for n in graph.inputs}
    end: dict[str, int] = dict(start)
    for k, node in enumerate(graph.nodes, start=1):
        for i in node.inputs:
            if i and not graph.tensors[i].is_const and not graph.tensors[i].state:
                end[r(i)] = max(end.get(r(i), k), k)
        for o in node.outputs:
            if o:
                start.setdefault(r(o), k)
                end[r(o)] = max(end.get(r(o), k), k)
    for o in graph.outputs:   # read after the last step: no in-place op at the last step may reuse it
        end[r(o)] = last + 1
    for n in graph.inputs:  # an input nobody reads still needs its bytes
        end.setdefault(r(n), 0)
    nbytes = {n: graph.tensors[n].nbytes for n in start}
    for reg in regions(graph, root):
        for n in reg.internal:  # one block of rows
            nbytes[n] = nbytes[n] // reg.rows * reg.block
        for n in {r(e) for e in reg.external}:  # other blocks use other rows: live through the loop
            start[n], end[n] = min(start[n], reg.steps[0]), max(end[n], reg.steps[1])
    buffers = [Buffer(n, nbytes[n], start[n], end[n]) for n in start]
    scratch = {}
    for k, node in enumerate(graph.nodes, start=1):
        size = registry.node_scratch(node, graph, kernels or Kernels())
        if size:
            name = f"{node.name}.scratch"
            while name in start or name in scratch.values():
                name += "_"
            scratch[k - 1] = name
            buffers.append(Buffer(name, size, k, k))
    hints = []
    for node in graph.nodes:
        if registry.node_inplace(node, graph) and node.inputs and not graph.tensors[node.inputs[0]].is_const:
            hints.append(InPlace(out=r(node.outputs[0]), src=r(node.inputs[0])))
    return buffers, hints, root, scratch
