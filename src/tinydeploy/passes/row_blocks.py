"""Row blocking: each maximal run of consecutive row-wise nodes (ops/registry.py) that share one
run-time row count becomes a region that runs in blocks of R rows (attr ``_block = [region, R]``).

The generated C runs every node of the region on rows [r, r + R) before moving to the next block,
so the tensors the region produces and consumes itself need R rows instead of T (the memory plan
sizes them so, schedule/blocks.py), and an in-place node whose input dies there updates it in place
(a residual stream). This is exact for row-wise ops, and for causal ones such as attention over a
KV cache too: a block writes its own cache rows before it reads them, and earlier rows were written
by earlier blocks. A transformer's layers then form one region: a prefill of 64 tokens keeps the
residual stream for 64 rows and everything else for 8. R is a scheduling choice (smaller: less
memory, more loop overhead); ``inspect`` shows the regions.
"""
from __future__ import annotations

from ..ir import Graph
from ..ops import registry

BLOCK_ROWS = 8


def row_blocks(graph: Graph, block: int = BLOCK_ROWS) -> Graph:
    region, key = -1, None
    for node in graph.nodes:
        node.attrs.pop("_block", None)
        op = registry.get(node)
        if op.rows is None:
            key = None
            continue
        count = node.inputs[op.rows] if op.rows < len(node.inputs) else ""
        k = (count, graph.tensors[node.outputs[0]].shape[0])
        if k != key:
            region, key = region + 1, k
        node.attrs["_block"] = [region, min(block, k[1])]
    return graph
