"""Tiling a whole graph: a home level per tensor (`choose_homes`) and every node tiled given the
L1 bytes its step leaves free (`tile_graph`); nodes of equal shapes and homes share one solution.
The per-node solver is schedule/tiling.py."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph
from ..ops import registry
from ..ops.tiles import TileSpec
from .tiling import L1, L2, Cost, Tiling, _result, _search, solve, spec_for

@dataclass
class GraphTiling:
    tilings: list[Tiling]
    homes: dict[str, str]
    seconds: float = 0.0
    solved: int = 0                  # distinct searches (nodes of equal shapes and homes share one)
    reserved: dict[str, int] = field(default_factory=dict)   # node -> L1 bytes of resident tensors

    @property
    def dma_bytes(self) -> int:
        return sum(t.dma_bytes for t in self.tilings)

    @property
    def min_dma_bytes(self) -> int:
        return sum(t.min_dma_bytes for t in self.tilings)

    @property
    def cycles(self) -> int:
        return sum(t.cycles for t in self.tilings)


def _signature(spec: TileSpec, homes: dict[str, str]):
    """The spec without names: nodes of equal shapes and homes share one solution."""
    ops = tuple((o.shape, o.itemsize, o.axes, o.kind, o.kind == "scratch" or homes.get(o.tensor, L2))
                for o in spec.operands)
    return spec.dims, ops, spec.macs, spec.elems, spec.orders


def _activations(graph: Graph):
    """Activation buffers with their lifetimes (alias groups merged; a node's whole-tensor kernel
    scratch left out: tiled, each tile's scratch is in its TileSpec)."""
    from .buffers import graph_buffers
    bufs, _, _, scratch = graph_buffers(graph)
    return [b for b in bufs if b.name not in scratch.values()]


def resident_bytes(graph: Graph, homes: dict[str, str], align: int = 4) -> list[int]:
    """Per node: bytes of the L1-homed tensors alive at its step (activations by their lifetimes,
    constants and state throughout)."""
    from .liveness import align_up
    always = sum(align_up(t.nbytes, align) for t in graph.tensors.values()
                 if (t.is_const or t.state) and homes.get(t.name) == L1)
    live = [always] * (len(graph.nodes) + 1)
    for b in _activations(graph):
        if homes.get(b.name) == L1:
            for k in range(b.start, min(b.end, len(graph.nodes)) + 1):
                live[k] += align_up(b.size, align)
    return live[1:]


def tile_graph(graph: Graph, homes: dict[str, str], l1_bytes: int, cost: Cost = Cost(), reserved: int = 0,
               limit: float = 1.0) -> GraphTiling:
    """Tile every node (alias ops have no code) given each tensor's home level; `reserved`: L1
    bytes taken throughout (stacks, the runtime's own data)."""
    from .buffers import alias_roots
    t0 = time.perf_counter()
    root = alias_roots(graph)
    homes = {**homes, **{n: homes.get(r, L2) for n, r in root.items()}}
    live = resident_bytes(graph, homes, cost.align)
    memo, out, taken = {}, [], {}
    for node, res in zip(graph.nodes, live):
        if registry.get(node).alias:
            continue
        spec = spec_for(node, graph)
        key = (_signature(spec, homes), res)
        t1 = time.perf_counter()
        if key not in memo:
            memo[key] = _search(spec, homes, l1_bytes - reserved - res, cost, limit)
        if memo[key] is None:
            solve(spec, homes, l1_bytes, reserved + res, cost, limit, node.name, node.op)   # raises the error
        out.append(_result(spec, homes, reserved + res, cost, node.name, node.op, *memo[key],
                           seconds=time.perf_counter() - t1))
        taken[node.name] = reserved + res
    return GraphTiling(out, homes, time.perf_counter() - t0, len(memo), taken)


def choose_homes(graph: Graph, l1_bytes: int, share: float = 0.5, align: int = 4) -> dict[str, str]:
    """Home level per tensor: weights and state (the KV cache) in L2; activations in L1 while the
    L1-resident ones alive at any step take at most `share` of L1 (the rest is for tile buffers),
    evicting to L2 the largest one alive at the fullest step until they do."""
    from .buffers import alias_roots
    from .liveness import align_up
    bufs, root = _activations(graph), alias_roots(graph)
    budget, resident = int(l1_bytes * share), {b.name for b in bufs}
    steps = len(graph.nodes) + 2
    while resident:
        live = np.zeros(steps, np.int64)
        for b in bufs:
            if b.name in resident:
                live[b.start:b.end + 1] += align_up(b.size, align)
        peak = int(np.argmax(live))
        if live[peak] <= budget:
            break
        victim = max((b for b in bufs if b.name in resident and b.start <= peak <= b.end),
                     key=lambda b: (b.size, b.name))
        resident.discard(victim.name)
    homes = {n: L2 for n in graph.tensors}
    homes.update({n: L1 for n in resident})
    homes.update({n: homes[r] for n, r in root.items()})
    return homes
