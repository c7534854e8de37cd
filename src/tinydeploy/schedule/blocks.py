"""Row blocks: what a region marked by passes/row_blocks.py means for memory and code.

A region is a run of consecutive row-wise nodes (ops/registry.py) sharing one row count; the
generated C runs all of them on rows [r, r + R), then on the next R rows, and so on. So:

* a tensor produced and consumed only inside the region is *internal*: its buffer holds R rows and
  lives only during its steps of one block;
* every other tensor the region touches is *external*: it is live during the whole region (later
  blocks read or write other rows of it) and the kernels get a pointer to row r of it;
* an in-place row-wise node whose input 0 is read by nobody after it writes its output over its
  input (one buffer, ``block_aliases``): row r of the input is dead once row r of the output is
  written, so a residual stream is updated in place in every block.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph
from ..ops import registry


@dataclass
class Region:
    index: int
    block: int                 # R: rows per block
    rows: int                  # T: the static row count of the region's tensors
    count: str                 # the run-time row-count tensor ("" = all T rows)
    steps: tuple[int, int]     # first and last step (node k runs at step k + 1)
    internal: set[str] = field(default_factory=set)   # buffer roots sized R rows
    external: set[str] = field(default_factory=set)   # row tensors indexed by block (tensor names)


def node_region(node) -> tuple[int, int] | None:
    """(region index, block rows) of a node, as passes/row_blocks.py marked it."""
    b = node.attrs.get("_block")
    return None if b is None else (int(b[0]), int(b[1]))


def block_aliases(graph: Graph) -> dict[str, str]:
    """In-place row-wise nodes inside regions whose input 0 dies there: output -> input 0."""
    last_read: dict[str, int] = {}
    for k, node in enumerate(graph.nodes):
        for i in node.inputs:
            last_read[i] = k
    out = {}
    for k, node in enumerate(graph.nodes):
        if node_region(node) is None or not registry.node_inplace(node, graph) or not node.inputs:
            continue
        x, t = node.inputs[0], graph.tensors[node.inputs[0]]
        if (last_read.get(x) == k and x not in graph.inputs and x not in graph.outputs and not t.is_const
                and not t.state and t.nbytes == graph.tensors[node.outputs[0]].nbytes):
            out[node.outputs[0]] = x
    return out


def _row_inputs(node) -> list[str]:
    """Inputs of a row-wise node that have a row axis (all activations but the row count/position)."""
    op = registry.get(node)
    return [i for k, i in enumerate(node.inputs) if i and k not in (op.rows, op.pos)]


def regions(graph: Graph, roots: dict[str, str]) -> list[Region]:
    """The graph's regions; ``roots`` maps tensor names to their buffers (alias groups)."""
    r = lambda n: roots.get(n, n)  # noqa: E731
    found: dict[int, Region] = {}
    where: dict[str, set[int]] = {}  # buffer root -> regions and (-1) outside nodes that touch it
    for k, node in enumerate(graph.nodes):
        mark = node_region(node)
        idx = -1 if mark is None else mark[0]
        if mark is not None:
            op = registry.get(node)
            count = node.inputs[op.rows] if op.rows < len(node.inputs) else ""
            reg = found.setdefault(idx, Region(idx, mark[1], graph.tensors[node.outputs[0]].shape[0], count,
                                               (k + 1, k + 1)))
            reg.steps = (reg.steps[0], k + 1)
            names = _row_inputs(node) + [o for o in node.outputs if o]
        else:
            names = [i for i in node.inputs if i] + [o for o in node.outputs if o]
        for n in names:
            t = graph.tensors[n]
            if not t.is_const and not t.state:
                where.setdefault(r(n), set()).add(idx)
    for n in graph.inputs + graph.outputs:
        where.setdefault(r(n), set()).add(-1)
    for reg in found.values():
        for k in range(reg.steps[0] - 1, reg.steps[1]):
            node = graph.nodes[k]
            for n in _row_inputs(node) + [o for o in node.outputs if o]:
                t = graph.tensors[n]
                if t.is_const or t.state:
                    continue
                if where[r(n)] == {reg.index}:
                    reg.internal.add(r(n))
                else:
                    reg.external.add(n)
    return [found[i] for i in sorted(found)]
