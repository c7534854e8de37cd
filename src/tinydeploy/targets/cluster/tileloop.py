"""Tile loops: a node run tile by tile through L1, its tensors homed in L2 (README.md, "Tiled").

The solver (schedule/tiling.py) gives each node a Tiling; here it becomes C. Per tile, the op's
own `emit` writes the call for a node of the tile's shapes (`TileSpec.sub`: a convolution's pads
at the borders, sliced per-channel parameters), its tensors the operands' windows: activations in
L1 tile buffers, constants in one L2 block per distinct tile. Core 0 moves them with the DMA:

    loads(0)
    tile i: wait loads(i) and the store that last used tile i's output buffer; start loads(i + 1)
            into the other buffers; barrier; compute (all cores); start the store of tile i

The last store is left in flight: the next node's first loads queue behind it on the one FIFO
channel (so they see its bytes, and waiting for them frees the area); td_run waits for the last
transfer before it returns. A node's first constants block may sit in one of two entry slots at the
start of the area (by parity), which the previous node fills while it computes (`entry`).

An operand whose window does not change from one tile to the next stays where it is (no
transfer); one that changes alternates between two buffers (double buffering). Buffers are laid
out in one L1 area (`td_tiles`), which the tiled nodes share: they run one after another.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from ...codegen.ctext import ctype
from ...errors import TinydeployError
from ...ir import Graph, Node
from ...ops import registry
from ...ops.tiles import Operand, window
from ...schedule.tiling import Tiling

ALIGN = 16


def up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class TileLoop:
    code: str
    l1_bytes: int                # the node's part of the tile area
    blocks: list[bytes]          # the L2 constant blocks its tiles use (index into `blocks` + base)
    dma_bytes: int               # bytes its transfers move (activations and constants)
    first_block: tuple | None = None   # (symbol, bytes) the previous node prefetches into the entry slot
    block_bytes: int = 0         # a constants slot (the entry slot's share)


def _like(ext: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """A window's shape at the tensor's rank: leading ones dropped or added."""
    ext = list(ext)
    while len(ext) > len(shape) and ext[0] == 1:
        ext.pop(0)
    return tuple([1] * (len(shape) - len(ext)) + ext)


def tile_node(node: Node, graph: Graph, spec, tile: dict) -> tuple[Node, Graph]:
    """The node computing one tile, in a graph of its windows (constants sliced)."""
    attrs, shapes = spec.sub(tile) if spec.sub else ({}, {})
    ops = {o.tensor: o for o in spec.operands if o.tensor}
    tensors = {}
    for name in [n for n in node.inputs + node.outputs if n]:
        t, o = graph.tensors[name], ops.get(name)
        if o is None:
            tensors[name] = t
            continue
        win = window(o, tile)
        ext = tuple(hi - lo for lo, hi in win)
        shape = tuple(shapes.get(name) or (t.shape if ext == o.shape else _like(ext, t.shape)))
        data = None
        if t.is_const:
            data = np.ascontiguousarray(t.data.reshape(o.shape)[tuple(slice(lo, hi) for lo, hi in win)]).reshape(shape)
        tensors[name] = replace(t, shape=shape, data=data)
    sub = Node(node.op, node.name, list(node.inputs), list(node.outputs), {**node.attrs, **attrs})
    return sub, Graph(graph.name, tensors, [sub], [], [])


def _dma(l1: str, home: str, o: Operand, win, load: bool) -> list[str]:
    """Transfers (td_xfer_t initialisers) of window `win` of `o` (a C-order view at `home`) to / from
    a dense L1 buffer: axes merged where contiguous on both sides, three levels per transfer."""
    ext = [hi - lo for lo, hi in win]
    if not all(ext):
        return []
    sz = o.itemsize
    hstride = [sz * registry.prod(list(o.shape[k + 1:])) for k in range(len(ext))]
    lstride = [sz * registry.prod(ext[k + 1:]) for k in range(len(ext))]
    start = sum(lo * s for (lo, _), s in zip(win, hstride))
    row, levels = sz, []          # contiguous row bytes; outer levels [count, home stride, L1 stride]
    for k in reversed(range(len(ext))):
        if ext[k] == 1:
            continue
        if not levels and hstride[k] == row:
            row *= ext[k]
        elif levels and levels[-1][1] * levels[-1][0] == hstride[k] and levels[-1][2] * levels[-1][0] == lstride[k]:
            levels[-1][0] *= ext[k]
        else:
            levels.append([ext[k], hstride[k], lstride[k]])
    inner, outer = (levels[:2] + [[1, 0, 0]] * 2)[:2], levels[2:]
    out = []
    for idx in itertools.product(*[range(n) for n, _, _ in outer]):
        hoff = start + sum(i * hs for i, (_, hs, _) in zip(idx, outer))
        loff = sum(i * ls for i, (_, _, ls) in zip(idx, outer))
        a, b = f"{l1} + {loff}", f"{home} + {hoff}"
        (dst, src), pick = ((a, b), lambda h, l_: (l_, h)) if load else ((b, a), lambda h, l_: (h, l_))
        (n1, h1, l1s), (n2, h2, l2s) = inner
        out.append("{" + ", ".join(map(str, (dst, src, row, n1, *pick(h1, l1s), n2, *pick(h2, l2s)))) + "}")
    return out


def _slots(keys: list) -> tuple[list[int], list[bool], int]:
    """Per tile: the buffer (0/1) and whether it is (re)loaded; copies needed."""
    slot, load = [0], [True]
    for prev, k in zip(keys, keys[1:]):
        load.append(k != prev)
        slot.append(1 - slot[-1] if k != prev else slot[-1])
    return slot, load, 1 + (max(slot) > 0)


# The C helpers the tile loops share (network.c.j2 includes them in tiling mode).
RUNTIME = """typedef struct {
    const void *dst, *src;
    uint32_t row, rows, dst_stride, src_stride, planes, dst_pstride, src_pstride;
} td_xfer_t;   /* one DMA transfer: 3-D strided, as td_dma_start_3d */
typedef struct {
    uint32_t next, nnext, st, nst;   /* the next tile's loads and this tile's stores: ranges of xf_ */
    uint8_t wait_ld, wait_st, call;  /* wait for its loads; for stores (1: the last, 2: two tiles back); its case */
    const uint8_t *wb;               /* its constants' block in L1 */
} td_tile_t;

/* Start transfers x[0..n) (core 0); returns the last one's id (`id` if none). */
static uint32_t td_xfer_(const td_xfer_t *x, uint32_t n, uint32_t id)
{
    for (; n; n--, x++)
        id = td_dma_start_3d((void *)x->dst, x->src, x->row, x->rows, x->dst_stride, x->src_stride, x->planes,
                             x->dst_pstride, x->src_pstride);
    return id;
}"""


def emit(node: Node, graph: Graph, t: Tiling, ctx, home, parallel, block_base: int, prefix: str,
         entry: int | None = None, entry_max: int = 0) -> TileLoop:
    """C of node `node` run as Tiling `t`: a loop over a table of tiles (their transfers and which of
    the distinct kernel calls each makes). `ctx`: the cluster's EmitContext (`tile_emit`);
    `home(tensor)`: C address of a tensor's first byte; `parallel(code)`: whether a kernel call
    splits across the cores; blocks are named `{prefix}t{block_base + i}`, the tile area `{prefix}tiles`.
    `entry` (the node's index among the tile loops): its first tile's constants go to the entry slot
    `{P}E<entry % 2>` at the start of the area, which the previous node filled (its macro
    `{P}PF<entry - 1>()`, run after its own first loads); the rest of its buffers start at `{P}TB`."""
    op, area, P = registry.get(node), f"{prefix}tiles", prefix.upper()
    if entry is not None:
        area = f"{area} + {P}TB"
    tiles = list(t.grid())
    moved = [o for o in t.spec.operands if o.tensor and o.nbytes and not graph.tensors[o.tensor].is_const]
    wins = [[window(o, tile) for o in moved] for tile in tiles]
    codes, blocks, scratch = [], [], 0
    for tile in tiles:
        sub, sg = tile_node(node, graph, t.spec, tile)
        ptrs = {o.tensor: f"(({ctype(graph.tensors[o.tensor].dtype)} *)({area} + @@{k}.@@))"
                for k, o in enumerate(moved)}
        code, block, used = ctx.tile_emit(sub, sg, op, ptrs)
        codes.append(code)
        blocks.append(block)
        scratch = max(scratch, used)
    # layout of the tile area: each moved operand's buffers, the constant blocks' two, the scratch
    off, base, slot_of, load_of = 0, {}, {}, {}
    for k, o in enumerate(moved):
        slot_of[k], load_of[k], copies = _slots([w[k] for w in wins])
        nbytes = up(max(o.itemsize * registry.prod([hi - lo for lo, hi in w[k]]) for w in wins))
        base[k] = [off + s * nbytes for s in range(copies)]
        off += copies * nbytes
    uniq = {b: i for i, b in enumerate(dict.fromkeys(b for b in blocks if b))}
    bslot, bload, bcopies = _slots(blocks)
    bbytes = up(max(map(len, blocks))) if uniq else 0
    wbase = [off + s * bbytes for s in range(bcopies)] if uniq else []
    # slot 0 is the entry slot, outside the node's own area, for constants blocks up to `entry_max`
    # (larger entry slots would take the tiles too much room)
    in_entry = entry is not None and bool(uniq) and bbytes <= entry_max
    if in_entry:
        wbase = [f"{P}E{entry % 2} - {P}TB"] + [off + s * bbytes for s in range(bcopies - 1)]
    off += (len(wbase) - in_entry) * bbytes
    scratch_at, off = off, off + up(scratch)
    # the entry slot is filled by the previous node when this node's first loads will wait for it
    prefetch = in_entry and bool(entry) and bool(blocks[0]) and any(o.kind != "out" for o in moved)

    def resolve(text: str, i: int) -> str:
        for k in base:
            text = text.replace(f"@@{k}.@@", str(base[k][slot_of[k][i]]))
        return text.replace("@@scratch@@", (f"{P}TB + " if entry is not None else "") + str(scratch_at))

    def buf(k, i):
        return f"{area} + {base[k][slot_of[k][i]]}"

    def loads(i: int) -> list[str]:
        out = [x for k, o in enumerate(moved) if o.kind != "out" and load_of[k][i]
               for x in _dma(buf(k, i), home(o.tensor), o, wins[i][k], True)]
        if blocks[i] and bload[i] and not (i == 0 and prefetch):
            n = len(blocks[i])
            out.append(f"{{{area} + {wbase[bslot[i]]}, {prefix}t{block_base + uniq[blocks[i]]}, {n}, 1, {n}, {n}, 1, 0, 0}}")
        return out

    outs = [k for k, o in enumerate(moved) if o.kind == "out"]
    xfers, rows, calls, last_use, any_st = loads(0), [], {}, {}, False
    first = len(xfers)
    for i in range(len(tiles)):
        nxt = loads(i + 1) if i + 1 < len(tiles) else []
        st = [x for k in outs for x in _dma(buf(k, i), home(moved[k].tensor), moved[k], wins[i][k], False)]
        # the stores that last used this tile's output buffers must be done before it computes
        prev = max((last_use.get((k, slot_of[k][i]), -9) for k in outs), default=-9)
        wait_st = 1 if prev == i - 1 else 2 if prev >= 0 else 0
        for k in outs:
            last_use[(k, slot_of[k][i])] = i
        code = resolve(codes[i], i)
        call = calls.setdefault(code, len(calls))
        wb = f"{area} + {wbase[bslot[i]]}" if blocks[i] else "0"
        rows.append(f"{{{len(xfers)}, {len(nxt)}, {len(xfers) + len(nxt)}, {len(st)}, "
                    f"{int(bool(loads(i)))}, {wait_st}, {call}, {wb}}}")
        xfers += nxt + st
        any_st = any_st or bool(st)
    dma_bytes = sum(o.itemsize * registry.prod([hi - lo for lo, hi in wins[i][k]]) for i in range(len(tiles))
                    for k, o in enumerate(moved) if o.kind == "out" or load_of[k][i])
    dma_bytes += sum(len(b) for b, ld in zip(blocks, bload) if b and ld)
    cases = []
    for code, c in calls.items():
        body = code if parallel(code) else ("if (core_ == 0) {\n    td_par_team = 1;\n    " + code.replace("\n", "\n    ")
                                            + "\n    td_par_team = ncores_;\n}\ntd_barrier();")
        cases.append(f"case {c}: {{\n    " + body.replace("\n", "\n    ") + "\n    break;\n}")
    split = ", ".join(f"{d} {t.tiles[d]} x {t.counts[d]}" for d in t.order if t.counts[d] > 1) or "whole"
    lines = [f"{{  /* {len(tiles)} tiles ({split}), {len(calls)} distinct calls */",
             "static const td_xfer_t xf_[] = {\n    " + ",\n    ".join(xfers or ["{0, 0, 0, 0, 0, 0, 0, 0, 0}"]) + "\n};",
             "static const td_tile_t tl_[] = {\n    " + ",\n    ".join(rows) + "\n};",
             "uint32_t ld_ = 0, st_[2] = {0, 0}, last_ = 0;",
             "(void)xf_; (void)st_; (void)last_;",
             f"if (core_ == 0) ld_ = td_xfer_(xf_, {first}, ld_);" if first else "",
             # the next node's first constants, into its entry slot (a macro: defined once it is emitted)
             f"if (core_ == 0) {P}PF{entry}();" if entry is not None else "",
             f"for (uint32_t i_ = 0; i_ < {len(tiles)}; i_++) {{",
             "    const td_tile_t *t_ = &tl_[i_];",
             "    if (core_ == 0) {",
             "        if (t_->wait_ld) td_dma_wait(ld_);",
             "        if (t_->wait_st == 1) td_dma_wait(last_);",
             "        else if (t_->wait_st == 2) td_dma_wait(st_[i_ & 1]);",
             "        ld_ = td_xfer_(xf_ + t_->next, t_->nnext, ld_);",
             "    }",
             "    td_barrier();",
             "    wb = t_->wb;",
             "    switch (t_->call) {",
             "    " + "\n".join(cases).replace("\n", "\n    "),
             "    }",
             "    if (core_ == 0 && t_->nst) st_[i_ & 1] = last_ = td_xfer_(xf_ + t_->st, t_->nst, 0);",
             "}",
             # the last store is not waited for: the next loads queue behind it on the one FIFO channel
             # (td_run waits for the last transfer before it returns)
             "if (core_ == 0) dma_ = last_, started_ = 1;" if any_st else "",
             "}"]
    first_block = (f"{prefix}t{block_base + uniq[blocks[0]]}", len(blocks[0])) if prefetch else None
    return TileLoop("\n".join(x for x in lines if x), off, list(uniq), dma_bytes, first_block, bbytes * in_entry)


def whole(spec):
    """The spec with every dim whole (an op family without `sub` computes one tile only)."""
    return replace(spec, dims=tuple(replace(d, tile=False) for d in spec.dims))


def check_tileable(node: Node, graph: Graph) -> None:
    if node.attrs.get("_block") is not None or any(graph.tensors[n].state for n in node.inputs + node.outputs if n):
        raise TinydeployError(f"cluster: node {node.name} ({node.op}) runs in a row-block loop or keeps state, "
                              f"which tile loops do not cover: its tensors must fit L1 whole")


class Tiler:
    """Every node's Tiling in tiling mode: activations homed in L2 (the memory plan's arena placed
    there), `capacity` bytes of L1 for tile buffers; nodes of equal shapes share one solve."""

    def __init__(self, graph: Graph, kernels, config, capacity: int, limit: float = 0.5):
        from ...schedule.tiling import L2, Cost
        self.graph, self.capacity, self.limit = graph, capacity, limit
        self.homes = {n: L2 for n in graph.tensors}
        self.cost = Cost.of(kernels, config.cores, dma_latency=config.dma_latency,
                            dma_bytes_per_cycle=config.dma_bytes_per_cycle)
        self.prefetch = True   # each tile loop prefetches the next one's first constants (entry slots)
        self._memo: dict = {}

    def solve(self, node: Node, capacity: int) -> Tiling:
        from ...schedule.graph_tiling import _signature
        from ...schedule.tiling import solve, spec_for
        check_tileable(node, self.graph)
        spec = spec_for(node, self.graph)
        spec = spec if spec.sub else whole(spec)
        key = (_signature(spec, self.homes), capacity)
        if key not in self._memo:
            self._memo[key] = solve(spec, self.homes, capacity, 0, self.cost, self.limit, node.name, node.op)
        return replace(self._memo[key], node=node.name, op=node.op, spec=spec)
