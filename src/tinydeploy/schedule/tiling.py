"""Tiling: choose per node the tile sizes that fit L1 and minimise modelled cycles (CP-SAT).

Input: a node's TileSpec (ops/tiles.py), the home level of each operand (L1: resident, read in
place; L2: moved by DMA, tile by tile), the L1 bytes available and a Cost (the target's figures).

Tile sizes. For a dim of size D (tiles multiple of m), a candidate is, for a tile count n, the
smallest multiple of m giving n tiles: m * ceil(ceil(D/m) / n) (a larger size with the same count
only costs memory). Every count up to 16 is a candidate, then counts at most 20 % apart, and the
smallest tile: at most ~60 sizes per dim. The divisors of D give equal tiles, the others a smaller
last tile (the code generator iterates [start, min(start + t, D))). The model has one Boolean per
candidate (exactly one true per dim); every per-axis quantity (tile count, largest window, first
and last window, sum of windows over all tiles, borders clipped) is a table over the candidates,
so linear in those Booleans; products of per-axis quantities (tile bytes, loads, bytes moved, the
tile count) use AddMultiplicationEquality.

Model (all cycle figures modelled; integer units of 1 / (16 * bytes_per_cycle) cycle):
* an operand tile is one DMA transfer: latency + bytes / bytes_per_cycle (README of targets/cluster);
* loads: with dims in loop order, an operand's tile changes whenever a dim it depends on changes,
  and also when an outer dim changes while an inner dependent dim is split, so it is loaded
  prod(n_d for d up to its innermost split dependent dim) times (weights of a K tile stay while
  the spatial tiles run under it); outputs likewise are stored once per tile of their dims;
* L1: reserved + sum over buffers of bytes * (2 if the tile changes between iterations, the DMA
  double buffer, else 1) + alignment slack <= capacity; scratch is single;
* cycles = compute (MACs * cycles_per_mac + elems * cycles_per_elem, constant) + tile_overhead *
  tiles + first tile's loads + last tile's stores + max(0, other DMA - compute - overheads):
  the per-tile sum of max(0, dma_i - compute_i) with DMA spread evenly over the tiles.
Ties go to fewer tiles along inner dims; each alternative loop order of the spec is solved and the
best kept (ties: fewer bytes moved, then the spec's first order).

The solver runs single-threaded with a deterministic time limit (same answer on every machine
and run); if it proves nothing in time, greedy halving of the largest tile is the fallback. A node
that cannot fit at any tiling raises BudgetError (a TinydeployError) with its smallest need and the bytes available.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetError, TinydeployError
from ..ir import Graph, Node
from ..ops import registry
from ..ops.kernels import Kernels
from ..ops.tiles import Axis, Dim, Operand, TileSpec, inputs_outputs, tensor, window  # noqa: F401 (re-exported)

L1, L2 = "L1", "L2"
BYTE_UNITS = 16   # cost units per byte moved; a cycle is BYTE_UNITS * bytes_per_cycle units
TIE = 1 << 12     # the objective's weight over the tie-break (which stays below it)


@dataclass(frozen=True)
class Cost:
    """The target's cost figures (modelled). Defaults: the rv32 fast kernels' 2.45 instructions
    per MAC spread over 8 cores; per output or elementwise element ~12 instructions (an estimate:
    requantization alone is ~6.75, benchmarks/results/rv32_kernels.md) over 8 cores; the cluster
    DMA's 20 + bytes / 8 cycles per transfer."""
    cycles_per_mac: float = 2.45 / 8
    cycles_per_elem: float = 12 / 8
    tile_overhead: int = 150        # per tile: DMA programming, waits, barrier, loop
    dma_latency: int = 20
    dma_bytes_per_cycle: int = 8
    align: int = 4                  # every buffer starts aligned: up to align - 1 bytes lost each

    @property
    def unit(self) -> int:          # cost units per cycle
        return BYTE_UNITS * self.dma_bytes_per_cycle

    @classmethod
    def of(cls, kernels: Kernels, cores: int, **kw) -> "Cost":
        """From a target's kernel description, its compute spread over `cores`; `kw`: the DMA and
        the rest (e.g. dma_latency=cfg.dma_latency, dma_bytes_per_cycle=cfg.dma_bytes_per_cycle)."""
        per_mac = kernels.direct_fast_per_mac if kernels.fast else kernels.direct_ref_per_mac
        return cls(**{"cycles_per_mac": per_mac / cores, "cycles_per_elem": 12 / cores, **kw})


@dataclass(frozen=True)
class Buffer:
    operand: str
    kind: str
    bytes: int          # one tile (the largest)
    copies: int         # 2: double-buffered (the tile changes between iterations), 1: single
    moves: int          # DMA transfers over the node (0: resident in L1 or scratch)
    moved_bytes: int    # bytes moved by those transfers


@dataclass
class Tiling:
    """The solver's answer for one node."""
    node: str
    op: str
    spec: TileSpec
    order: tuple[str, ...]
    tiles: dict[str, int]           # tile size per dim
    counts: dict[str, int]          # tiles per dim
    buffers: list[Buffer]
    reserved: int                   # L1 bytes already taken when the node runs
    cycles: int                     # modelled
    compute_cycles: int
    dma_cycles: int                 # all transfers
    exposed_dma_cycles: int         # not hidden behind compute
    optimal: bool                   # CP-SAT proved the optimum (of the model)
    method: str                     # "cp-sat" | "greedy" | "whole"
    seconds: float = 0.0

    @property
    def n_tiles(self) -> int:
        return registry.prod(list(self.counts.values()))

    @property
    def l1_bytes(self) -> int:
        """Bytes of the node's tile buffers (double buffers counted twice), without `reserved`."""
        return sum(b.bytes * b.copies for b in self.buffers)

    @property
    def dma_bytes(self) -> int:
        return sum(b.moved_bytes for b in self.buffers)

    @property
    def min_dma_bytes(self) -> int:
        """Each moved operand's part the node reads or writes, moved once: issue 15's minimum."""
        ops, size = {o.name: o for o in self.spec.operands}, {d.name: d.size for d in self.spec.dims}

        def touched(o: Operand) -> int:
            return o.itemsize * registry.prod([a.touched(size.get(a.dim, 0), full) for a, full in zip(o.axes, o.shape)])
        return sum(touched(ops[b.operand]) for b in self.buffers if b.moves)

    def grid(self):
        """Every tile: {dim: (start, size)} in loop order (dims left whole span their full size)."""
        spans = [[(s, min(self.tiles[d], size - s)) for s in range(0, size, self.tiles[d])]
                 for d, size in ((d, self.spec.dim(d).size) for d in self.order)]
        for combo in itertools.product(*spans):
            yield dict(zip(self.order, combo))


# ---- candidate tile sizes and per-axis tables ------------------------------------------------------
DENSE, RATIO = 16, 1.2   # tile counts: every one up to DENSE, then steps of at most 20 %


def candidates(d: Dim) -> list[int]:
    """Tile sizes of dim d, largest first: for each tile count the smallest size giving it, for
    every count up to DENSE and then counts RATIO apart (up to ~60 sizes per dim, which keeps the
    model small; the smallest tile is always there)."""
    if not d.tile or d.size <= 1:
        return [d.size]
    m = max(1, min(d.multiple, d.size))
    units = -(-d.size // m)
    counts, n = [], 1
    while n < units:
        counts.append(n)
        n = n + 1 if n < DENSE else max(n + 1, int(n * RATIO))
    vals = {min(d.size, m * -(-units // n)) for n in counts + [units]}
    if d.max_tile is not None:
        vals = {v for v in vals if v <= d.max_tile} or {min(vals)}
    return sorted(vals, reverse=True)


def _axis_tables(a: Axis, full: int, d: Dim | None, cands: list[int]):
    """Per candidate: (largest window, first window, last window, sum of windows over the tiles)."""
    if d is None:
        lo, hi = a.window(0, 0, full)
        e = max(0, hi - lo)
        return [(e, e, e, e)] * len(cands)
    rows = []
    for t in cands:
        starts = np.arange(0, d.size, t, dtype=np.int64)
        lo, hi = a.window(starts, np.minimum(t, d.size - starts), full)
        ext = np.maximum(hi - lo, 0)
        rows.append((int(ext.max()), int(ext[0]), int(ext[-1]), int(ext.sum())))
    return rows


@dataclass
class _Prep:
    """Everything about one (spec, homes, order) the evaluator and the CP model share."""
    spec: TileSpec
    order: tuple[str, ...]
    cands: dict[str, list[int]]
    counts: dict[str, list[int]]
    ops: list[Operand]
    moved: list[bool]                               # False: kernel scratch, never moved
    tables: list[list[tuple[str | None, list]]]    # per operand, per axis: (dim, table rows)


def _prepare(spec: TileSpec, homes: dict[str, str], order) -> _Prep:
    dims = {d.name: d for d in spec.dims}
    cands = {n: candidates(d) for n, d in dims.items()}
    counts = {n: [-(-dims[n].size // t) for t in c] for n, c in cands.items()}
    # operands whose home is L1 are read and written in place (their bytes are in `reserved`)
    ops = [o for o in spec.operands if o.nbytes and (o.kind == "scratch" or homes.get(o.tensor, L2) != L1)]
    moved = [o.kind != "scratch" for o in ops]
    tables = [[(a.dim, _axis_tables(a, full, dims.get(a.dim), cands[a.dim] if a.dim else [0]))
               for a, full in zip(o.axes, o.shape)] for o in ops]
    return _Prep(spec, tuple(order), cands, counts, ops, moved, tables)


# ---- the model, evaluated in Python (fallback, checks, results) --------------------------------------
def _evaluate(p: _Prep, idx: dict[str, int], cost: Cost) -> dict:
    n = {d: p.counts[d][idx[d]] for d in p.order}
    split = {d: n[d] > 1 for d in p.order}
    pick = lambda dim, rows, col: rows[idx[dim] if dim else 0][col]  # noqa: E731
    bufs, l1, first, last, dma_total = [], 0, 0, 0, 0
    for k, o in enumerate(p.ops):
        tile = o.itemsize * registry.prod([pick(dm, rows, 0) for dm, rows in p.tables[k]])
        deps = [d for d in p.order if d in o.dims()]
        changes = any(split[d] for d in deps)
        copies = 2 if changes and o.kind != "scratch" else 1
        l1 += tile * copies
        if not p.moved[k]:
            bufs.append(Buffer(o.name, o.kind, tile, 1, 0, 0))
            continue
        inner = max((p.order.index(d) for d in deps if split[d]), default=-1)
        repeat = registry.prod([n[d] for i, d in enumerate(p.order) if i < inner and d not in deps])
        loads = repeat * registry.prod([n[d] for d in deps])
        moved = repeat * o.itemsize * registry.prod([pick(dm, rows, 3) for dm, rows in p.tables[k]])
        end = o.itemsize * registry.prod([pick(dm, rows, 2 if o.kind == "out" else 1) for dm, rows in p.tables[k]])
        if o.kind == "out":
            last += cost.dma_latency * cost.unit + BYTE_UNITS * end
        else:
            first += cost.dma_latency * cost.unit + BYTE_UNITS * end
        dma_total += loads * cost.dma_latency * cost.unit + BYTE_UNITS * moved
        bufs.append(Buffer(o.name, o.kind, tile, copies, loads, moved))
    tiles = registry.prod(list(n.values()))
    busy = _compute_units(p.spec, cost) + tiles * cost.tile_overhead * cost.unit
    exposed = max(0, dma_total - first - last - busy)
    total = busy + first + last + exposed
    return dict(n=n, buffers=bufs, l1=l1 + cost.align * len(bufs), cycles=total, busy=busy, dma=dma_total,
                exposed=first + last + exposed, moved=sum(b.moved_bytes for b in bufs))


def _compute_units(spec: TileSpec, cost: Cost) -> int:
    return int(round((spec.macs * cost.cycles_per_mac + spec.elems * cost.cycles_per_elem) * cost.unit))


# ---- the CP-SAT model ------------------------------------------------------------------------------
def _solve_cp(p: _Prep, cost: Cost, capacity: int | None, limit: float):
    """(status, {dim: index}) minimising cycles (capacity given) or L1 bytes (capacity None).
    The same quantities as _evaluate; anything fixed by the candidates stays a Python constant."""
    from ortools.sat.python import cp_model
    m = cp_model.CpModel()
    ub: dict[int, int] = {}   # upper bound of every integer variable, for tight product domains

    def var(lo, hi, name):
        v = m.NewIntVar(lo, hi, name)
        ub[v.Index()] = hi
        return v

    def hi(x):
        return x if isinstance(x, int) else ub[x.Index()]

    pick = {}   # one Boolean per candidate of each dim, exactly one true: tables are linear in them
    for d in p.order:
        pick[d] = [m.NewBoolVar(f"{d}_{j}") for j in range(len(p.cands[d]))]
        m.AddExactlyOne(pick[d])

    def table(dim, vals, name):
        """vals[chosen candidate of dim], a constant where the table is."""
        if dim is None or len(set(vals)) == 1:
            return vals[0]
        v = var(min(vals), max(vals), name)
        m.Add(v == sum(int(x) * b for x, b in zip(vals, pick[dim])))
        return v

    def any_of(lits, name):
        if any(x is True for x in lits):
            return True
        lits = [x for x in lits if x is not False]
        if not lits:
            return False
        b = m.NewBoolVar(name)
        m.AddMaxEquality(b, lits)
        return b

    def choose(cond, x, name, other=1):
        """x if cond else other."""
        if cond is True or cond is False:
            return x if cond else other
        v = var(min(other, 0), max(hi(x), other), name)
        m.Add(v == x).OnlyEnforceIf(cond)
        m.Add(v == other).OnlyEnforceIf(cond.Not())
        return v

    def product(terms, name):
        const = registry.prod([t for t in terms if isinstance(t, int)])
        vs = [t for t in terms if not isinstance(t, int)]
        if not vs:
            return const
        acc = vs[0]
        for j, v in enumerate(vs[1:]):
            nxt = var(0, hi(acc) * hi(v), f"{name}_{j}")
            m.AddMultiplicationEquality(nxt, [acc, v])
            acc = nxt
        if const == 1:
            return acc
        out = var(0, const * hi(acc), name)
        m.Add(out == const * acc)
        return out

    n = {d: table(d, p.counts[d], f"n_{d}") for d in p.order}
    # more than one tile along d: only the first (largest) candidate can give one tile
    split = {d: True if p.counts[d][0] > 1 else False if len(p.cands[d]) == 1 else pick[d][0].Not()
             for d in p.order}

    l1_terms, first, last, dma, dma_hi = [], [], [], [], 0
    for k, o in enumerate(p.ops):
        ext = lambda col, tag: [table(dm, [r[col] for r in rows], f"{tag}{k}_{j}")  # noqa: E731
                                for j, (dm, rows) in enumerate(p.tables[k])]
        tile = product([o.itemsize] + ext(0, "e"), f"tile{k}")
        deps = [d for d in p.order if d in o.dims()]
        l1_terms.append(tile)
        if o.kind != "scratch":   # double buffer when the tile changes between iterations
            l1_terms.append(choose(any_of([split[d] for d in deps], f"changes{k}"), tile, f"dbl{k}", 0))
        if not p.moved[k]:
            continue
        # an outer dim the operand does not depend on repeats its tiles when a later dependent dim is split
        factors = [choose(any_of([split[e] for e in deps if p.order.index(e) > i], f"rep{k}_{d}"), n[d], f"f{k}_{d}")
                   for i, d in enumerate(p.order) if d not in deps]
        loads = product(factors + [n[d] for d in deps], f"loads{k}")
        moved = product(factors + [o.itemsize] + ext(3, "s"), f"moved{k}")
        end = product([o.itemsize] + ext(2 if o.kind == "out" else 1, "x"), f"end{k}")
        (last if o.kind == "out" else first).append(cost.dma_latency * cost.unit + BYTE_UNITS * end)
        dma.append(cost.dma_latency * cost.unit * loads + BYTE_UNITS * moved)
        dma_hi += cost.dma_latency * cost.unit * hi(loads) + BYTE_UNITS * hi(moved)
    l1 = sum(l1_terms) + cost.align * len(p.ops)
    if capacity is not None:
        m.Add(l1 <= capacity)
        tiles = product([n[d] for d in p.order], "tiles")
        busy = _compute_units(p.spec, cost) + cost.tile_overhead * cost.unit * tiles
        exposed = var(0, dma_hi, "exposed")
        m.Add(exposed >= sum(dma) - sum(first) - sum(last) - busy)
        # ties: fewer tiles along inner dims (longer contiguous rows), so equal layers read alike
        inner = sum((k + 1) * j * b for k, d in enumerate(p.order) for j, b in enumerate(pick[d]))
        m.Minimize((busy + sum(first) + sum(last) + exposed) * TIE + inner)
    else:
        m.Minimize(l1)
    s = cp_model.CpSolver()
    s.parameters.num_workers = 1
    s.parameters.max_deterministic_time = limit
    s.parameters.max_time_in_seconds = 30 * limit
    s.parameters.cp_model_presolve = False   # on these small models presolve costs more than it saves
    status = s.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return s.StatusName(status), None
    return s.StatusName(status), {d: next(j for j, b in enumerate(pick[d]) if s.BooleanValue(b)) for d in p.order}


# ---- one node ----------------------------------------------------------------------------------------
def spec_for(node: Node, graph: Graph) -> TileSpec:
    """The op's TileSpec, or the untiled one: every operand whole, one tile."""
    op = registry.get(node)
    spec = op.tiling(node, graph) if op.tiling else None
    return spec if spec is not None else untiled(node, graph)


def untiled(node: Node, graph: Graph) -> TileSpec:
    ins, outs = inputs_outputs(node, graph)
    # a state input (a KV cache) may be updated in place: it moves in and back out
    outs += [(n, "out") for n, _ in ins if graph.tensors[n].state]
    ops = tuple(tensor(graph, n, k, (Axis(),) * len(graph.tensors[n].shape)) for n, k in ins + outs)
    return TileSpec((), ops, registry.node_macs(node, graph), sum(graph.tensors[n].size for n, _ in outs))


def _orders(spec: TileSpec) -> list[tuple[str, ...]]:
    """The spec's loop orders, without those equal once unsplittable dims are dropped."""
    cands = {d.name: candidates(d) for d in spec.dims}
    seen, out = set(), []
    for order in ((tuple(d.name for d in spec.dims),) + tuple(spec.orders)):
        key = tuple(d for d in order if len(cands[d]) > 1)
        if key not in seen:
            seen.add(key)
            out.append(tuple(order))
    return out


def _greedy(p: _Prep, cost: Cost, avail: int) -> dict[str, int] | None:
    """Halve the largest tile until the node fits; None if even the smallest tiles do not."""
    idx = {d: 0 for d in p.order}
    while _evaluate(p, idx, cost)["l1"] > avail:
        open_ = [d for d in p.order if idx[d] < len(p.cands[d]) - 1]
        if not open_:
            return None
        d = max(open_, key=lambda e: p.cands[e][idx[e]])
        half = -(-p.cands[d][idx[d]] // 2)
        idx[d] = next((i for i, t in enumerate(p.cands[d]) if t <= half), len(p.cands[d]) - 1)
    return idx


def solve(spec: TileSpec, homes: dict[str, str], capacity: int, reserved: int = 0, cost: Cost = Cost(),
          limit: float = 1.0, node: str = "?", op: str = "?") -> Tiling:
    """Tile one node: `capacity` bytes of L1, `reserved` of them taken by what else is alive;
    `homes`: tensor -> L1 / L2 (absent: L2); `limit`: CP-SAT deterministic time per loop order."""
    t0 = time.perf_counter()
    found = _search(spec, homes, capacity - reserved, cost, limit)
    if found is None:
        need = _smallest(spec, homes, cost, limit)
        raise BudgetError(
            f"node {node} ({op}): does not fit in L1 at any tiling: its smallest tiling needs {need:,} bytes, "
            f"{max(capacity - reserved, 0):,} are available ({capacity:,} bytes of L1, {reserved:,} taken by "
            f"tensors alive at that step)")
    return _result(spec, homes, reserved, cost, node, op, *found, seconds=time.perf_counter() - t0)


def _search(spec, homes, avail: int, cost: Cost, limit: float):
    """(order, {dim: candidate index}, method, proven optimal) of the best tiling, or None."""
    best, proven = None, True
    for order in _orders(spec):
        p = _prepare(spec, homes, order)
        if all(len(c) == 1 for c in p.cands.values()):
            idx, method = {d: 0 for d in p.order}, "whole"
            if _evaluate(p, idx, cost)["l1"] > avail:
                continue
        else:
            status, idx = _solve_cp(p, cost, avail, limit)
            method = "cp-sat"
            proven &= status in ("OPTIMAL", "INFEASIBLE")
            if idx is None and status != "INFEASIBLE":   # no answer in time: the greedy fallback
                idx, method = _greedy(p, cost, avail), "greedy"
                proven = False
            if idx is None:
                continue
        ev = _evaluate(p, idx, cost)
        if best is None or (ev["cycles"], ev["moved"]) < best[0]:
            best = ((ev["cycles"], ev["moved"]), order, idx, method)
    return None if best is None else (best[1], best[2], best[3], proven)


def _result(spec, homes, reserved, cost, node, op, order, idx, method, proven, seconds=0.0) -> Tiling:
    p = _prepare(spec, homes, order)
    ev = _evaluate(p, idx, cost)
    c = lambda units: -(-units // cost.unit)  # noqa: E731
    return Tiling(node, op, spec, p.order, {d: p.cands[d][idx[d]] for d in p.order}, ev["n"], ev["buffers"],
                  reserved, c(ev["cycles"]), c(ev["busy"]), c(ev["dma"]), c(ev["exposed"]), proven, method, seconds)


def _smallest(spec: TileSpec, homes, cost: Cost, limit: float) -> int:
    """L1 bytes of the node's leanest tiling (for the error message)."""
    need = None
    for order in _orders(spec):
        p = _prepare(spec, homes, order)
        idx = {d: len(p.cands[d]) - 1 for d in p.order}
        if any(len(c) > 1 for c in p.cands.values()):
            idx = _solve_cp(p, cost, None, limit)[1] or idx
        l1 = _evaluate(p, idx, cost)["l1"]
        need = l1 if need is None else min(need, l1)
    return need
