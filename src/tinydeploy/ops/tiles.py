"""How an operator may be cut into tiles: the op-file side of tiling (OpDef.tiling -> TileSpec).

A TileSpec describes one node's iteration space and the memory each tile touches; the solver in
schedule/tiling.py chooses the tile sizes. Pieces:

* `Dim`: an iteration dimension with its full size, in loop order (outer first). `tile=False`
  keeps it whole (a reduction the kernel requantizes after the whole sum, a softmax row);
  `multiple`: tile sizes are multiples of it (groups, the kernel's unrolling), the last tile takes
  the rest; `max_tile` bounds the tile (e.g. one batch item at a time).
* `Axis`: one axis of an operand. `dim=None`: the axis is always whole (or the fixed window
  [lo, lo + size)). Otherwise the outputs [o, o + t) of dim `dim` read the window
        [floor(o * stride) - pad, floor((o + t - 1) * stride) + span - pad)
  clipped to the axis: stride 1 / span 1 is the identity; a convolution row has stride SH,
  span (KH - 1) * DH + 1, pad PT (the halo); a grouped convolution's input channels have stride
  Cg/Kg (a Fraction) and span ceil(Cg/Kg), tiles being whole groups.
* `Operand`: a tensor (or a derived array such as per-channel requantization parameters) as the
  tile loops see it: a C-order view of its bytes (`shape`, `itemsize`), one Axis per view axis, and
  its kind: "in", "out", "const" (weights, parameters), "scratch" (kernel work memory, L1 only).
  Each dim maps to at most one axis of an operand.

Every operand tile here is at most three strided levels, one transfer of the cluster DMA.

`TileSpec.sub(tile)`, where a family gives one, describes the node that computes one tile with the
op's own kernel: (attrs to replace, {tensor: shape} where the window's shape is not the tensor's
own); tensors are the operands' windows. Without it a code generator keeps every dim whole.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from typing import Callable

import numpy as np

from .registry import prod


@dataclass(frozen=True)
class Dim:
    name: str
    size: int
    tile: bool = True
    multiple: int = 1
    max_tile: int | None = None


@dataclass(frozen=True)
class Axis:
    dim: str | None = None
    stride: Fraction | int = 1
    span: int = 1
    pad: int = 0
    lo: int = 0                # whole axes: a fixed window [lo, lo + size) (size None: the whole axis)
    size: int | None = None

    def window(self, start, count, full: int):
        """(lo, hi) of the elements outputs [start, start + count) read (numpy arrays welcome)."""
        if self.dim is None:
            return self.lo, self.lo + (full - self.lo if self.size is None else self.size)
        f = Fraction(self.stride)
        if isinstance(start, int) and isinstance(count, int):
            lo = start * f.numerator // f.denominator - self.pad
            hi = (start + count - 1) * f.numerator // f.denominator + self.span - self.pad
            return min(max(lo, 0), full), min(max(hi, 0), full)
        lo = np.asarray(start) * f.numerator // f.denominator - self.pad
        hi = (np.asarray(start) + count - 1) * f.numerator // f.denominator + self.span - self.pad
        return np.clip(lo, 0, full), np.clip(hi, 0, full)


    def touched(self, count: int, full: int) -> int:
        """How many elements of the axis outputs 0 .. count - 1 of its dim read, all together."""
        if self.dim is None:
            lo, hi = self.window(0, 0, full)
            return hi - lo
        lo, hi = self.window(np.arange(count), 1, full)
        seen = np.zeros(full + 1, np.int64)
        np.add.at(seen, lo, 1)
        np.add.at(seen, hi, -1)
        return int((np.cumsum(seen)[:full] > 0).sum())


@dataclass(frozen=True)
class Operand:
    name: str
    shape: tuple[int, ...]
    itemsize: int
    axes: tuple[Axis, ...]
    kind: str                  # "in" | "out" | "const" | "scratch"
    tensor: str | None = None  # the graph tensor (its home level); None: derived constant or scratch

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * self.itemsize

    def dims(self) -> set[str]:
        return {a.dim for a in self.axes if a.dim is not None}


@dataclass(frozen=True)
class TileSpec:
    dims: tuple[Dim, ...]
    operands: tuple[Operand, ...]
    macs: int = 0            # multiply-accumulates of the whole node
    elems: int = 0           # other per-element work of the whole node (eltwise, tables, requantization)
    orders: tuple[tuple[str, ...], ...] = ()   # loop orders to consider besides `dims`' own
    sub: Callable[[dict], tuple[dict, dict]] | None = field(default=None, compare=False)  # see above

    def dim(self, name: str) -> Dim:
        return next(d for d in self.dims if d.name == name)


# ---- builders the op files share ------------------------------------------------------------
def tensor(graph, name: str, kind: str, axes, shape=None) -> Operand:
    """An operand for graph tensor `name` viewed as `shape` (default: its own shape)."""
    t = graph.tensors[name]
    shape = tuple(int(s) for s in (t.shape if shape is None else shape))
    assert prod(shape) == t.size and len(axes) == len(shape), (name, shape, t.shape, axes)
    return Operand(name, shape, np.dtype(t.dtype).itemsize, tuple(axes), kind, name)


def derived(name: str, shape, itemsize: int, axes, kind: str = "const") -> Operand:
    """Per-channel parameters the kernel reads from constant memory, or a kernel's scratch."""
    return Operand(name, tuple(int(s) for s in shape), itemsize, tuple(axes), kind, None)


def inputs_outputs(node, graph):
    """The kinds of a node's non-empty inputs (constant or activation) and outputs, in order."""
    return ([(n, "const" if graph.tensors[n].is_const else "in") for n in node.inputs if n],
            [(n, "out") for n in node.outputs if n])


def conv_like(node, graph, g: dict, x: str, y: str, consts=(), macs: int = 0, elems: int = 0,
              scratch: int = 0, per_k_attrs=()) -> TileSpec:
    """Convolutions and pools (conv.geometry / pool.geometry dict `g`, NCHW, 1-D as H = 1).

    Dims N (one item per tile), K (output channels; whole groups, multiples of 4 where the count
    allows, for the 4-channel kernels), OH, OW; the input's channels follow K for grouped and
    depthwise layers and are whole otherwise (the reduction). `consts`: [(operand name, tensor or
    None, shape, itemsize, per_k)]: per_k operands are sliced with K (weights, bias, requantization
    parameters), others whole. `scratch`: itemsize of a padded input copy per tile (0: none).
    `per_k_attrs`: attrs holding one value per output channel (sliced with K in a tile's node).
    """
    N, C, H, W, OH, OW = (g[k] for k in ("N", "C", "H", "W", "OH", "OW"))
    K, G = g.get("K", C), g.get("G", C if "K" not in g else 1)
    Kg, Cg = K // G, C // G
    rows = Axis("OH", g["SH"], (g["KH"] - 1) * g["DH"] + 1, g["PT"])
    cols = Axis("OW", g["SW"], (g["KW"] - 1) * g["DW"] + 1, g["PL"])
    chans = Axis() if G == 1 else Axis("K", Fraction(Cg, Kg), math.ceil(Cg / Kg))
    group = Kg if G > 1 else 1
    mult = group * 4 if K % (group * 4) == 0 else group
    # an AveragePool counting pads with ceil_mode divides its last window by what it overhangs: keep rows whole
    spatial = not (node.attr("ceil_mode", 0) and node.attr("count_include_pad", 0))
    dims = (Dim("N", N, max_tile=1), Dim("K", K, multiple=mult), Dim("OH", OH, spatial), Dim("OW", OW, spatial),
            Dim("C", Cg, tile=False))
    ops = [tensor(graph, x, "in", (Axis("N"), chans, rows, cols), (N, C, H, W))]
    for name, tname, shape, itemsize, per_k in consts:
        axes = (Axis("K" if per_k else None),) + (Axis(),) * (len(shape) - 1)
        ops.append(tensor(graph, tname, "const", axes, shape) if tname else derived(name, shape, itemsize, axes))
    if scratch:   # the padded input of a tile: channels as the input's, rows and cols in padded coordinates
        HP, WP = H + g["PT"] + g["PB"], W + g["PL"] + g["PR"]
        pr, pc = (Axis(a.dim, a.stride, a.span, 0) for a in (rows, cols))
        ops.append(derived(f"{node.name}_pad", (C, HP, WP), scratch, (chans, pr, pc), "scratch"))
    ops.append(tensor(graph, y, "out", (Axis("N"), Axis("K"), Axis("OH"), Axis("OW")), (N, K, OH, OW)))
    orders = (("N", "OH", "OW", "K", "C"),)   # activation-stationary besides weight-stationary
    return TileSpec(dims, tuple(ops), macs, elems, orders, _conv_sub(node, g, ops, per_k_attrs))


def _conv_sub(node, g: dict, ops, per_k_attrs):
    """A tile's node: the same convolution (or pool) in 2-D on the input window, its pads the part
    of the tile's halo outside the input; grouped layers keep their channels per group."""
    glob = node.op.startswith("Global") or node.attr("_global")
    K, G = g.get("K", g["C"]), g.get("G", 1)

    def sub(tile):
        shapes = {o.tensor: tuple(hi - lo for lo, hi in win) for o, win in
                  ((o, window(o, tile)) for o in ops if o.tensor)}
        if glob:
            return {}, shapes
        pads = []
        for dim, s, k, d, p, n in (("OH", "SH", "KH", "DH", "PT", "H"), ("OW", "SW", "KW", "DW", "PL", "W")):
            o0, t = tile.get(dim, (0, g[dim]))
            lo, hi = o0 * g[s] - g[p], (o0 + t - 1) * g[s] + (g[k] - 1) * g[d] + 1 - g[p]
            pads.append((max(0, -lo), max(0, hi - g[n])))
        k0, kt = tile.get("K", (0, K))
        attrs = {"strides": [g["SH"], g["SW"]], "dilations": [g["DH"], g["DW"]], "auto_pad": "NOTSET",
                 "pads": [pads[0][0], pads[1][0], pads[0][1], pads[1][1]], "ceil_mode": 0,
                 **({"kernel_shape": [g["KH"], g["KW"]]} if "kernel_shape" in node.attrs else {}),
                 **({"group": G * kt // K} if G > 1 else {})}
        for a in per_k_attrs:
            v = np.asarray(node.attrs[a])
            if v.size == K:
                attrs[a] = v.reshape(-1)[k0:k0 + kt]
        return attrs, shapes
    return sub


def window(op: Operand, tile: dict) -> tuple[tuple[int, int], ...]:
    """[lo, hi) per axis of op's view that the tile ({dim: (start, size)}) reads or writes."""
    return tuple(tuple(int(v) for v in (a.window(*tile.get(a.dim, (0, full)), full) if a.dim else a.window(0, 0, full)))
                 for a, full in zip(op.axes, op.shape))


def matmul_like(node, graph, a: str, b: str, y: str, ta: int, tb: int, extra=(), macs: int = 0,
                elems: int = 0, per_n_attrs=()) -> TileSpec | None:
    """Y[.., M, N] = A'[.., M, K] B'[.., K, N] with K whole (requantization after the whole sum).
    Batch dims flatten into B when each operand's batch is the full one or absent; other
    broadcasts stay untiled (None). `extra`: [(operand name, tensor or None, shape, itemsize,
    an Axis or dim name per axis)] for biases, C, row scales and per-column parameters."""
    from .matmul import dims as mm_dims
    M, K, N, batch, abatch, bbatch = mm_dims(graph.tensors[a].shape, graph.tensors[b].shape, ta, tb)
    nb = prod(batch)

    def bview(own):   # an operand's batch broadcast to `batch` is either all of it or absent
        if prod(own) == 1:
            return Axis(), 1
        return (Axis("B"), nb) if prod(own) == nb else (None, 0)

    (ax_a, na), (ax_b, nbb) = bview(abatch), bview(bbatch)
    if ax_a is None or ax_b is None:
        return None
    am, ak = Axis("M"), Axis()
    bn, bk = Axis("N"), Axis()
    ops = [tensor(graph, a, "in" if not graph.tensors[a].is_const else "const",
                  (ax_a, ak, am) if ta else (ax_a, am, ak), (na, K, M) if ta else (na, M, K)),
           tensor(graph, b, "const" if graph.tensors[b].is_const else "in",
                  (ax_b, bn, bk) if tb else (ax_b, bk, bn), (nbb, N, K) if tb else (nbb, K, N))]
    for name, tname, shape, itemsize, names in extra:
        axes = tuple(d if isinstance(d, Axis) else Axis(d) for d in names)
        kind = "const" if tname is None or graph.tensors[tname].is_const else "in"
        ops.append(tensor(graph, tname, kind, axes, shape) if tname else derived(name, shape, itemsize, axes))
    ops.append(tensor(graph, y, "out", (Axis("B" if nb > 1 else None), Axis("M"), Axis("N")), (nb, M, N)))
    dims = (Dim("B", nb), Dim("N", N, multiple=4 if N % 4 == 0 else 1), Dim("M", M), Dim("K", K, tile=False))

    def sub(tile):   # per-column attrs (QMatMul's m, s) sliced with N
        n0, nt = tile.get("N", (0, N))
        return {a: np.asarray(node.attrs[a]).reshape(-1)[n0:n0 + nt] for a in per_n_attrs
                if np.size(node.attrs[a]) == N > 1}, {}
    return TileSpec(dims, tuple(ops), macs, elems, (("B", "M", "N", "K"),), sub)


def elementwise(node, graph, elems_per_item: int = 1, consts=()) -> TileSpec | None:
    """Elementwise ops with numpy broadcasting. The output's axes are merged where every operand
    is either whole or broadcast alike (same-shape operands: one flat axis); the first merged axis,
    E, is tiled and the others stay whole, so a per-channel or per-column operand moves whole
    rows of its own. `consts`: whole derived constants [(name, bytes)] such as lookup tables."""
    ins, outs = inputs_outputs(node, graph)
    oshape = graph.tensors[outs[0][0]].shape
    keep = [k for k, d in enumerate(oshape) if d != 1]
    names = [n for n, _ in ins + outs]
    if any(graph.tensors[n].state for n in names):
        return None

    def mask(name):   # per kept output axis: does the operand span it (else it is broadcast)
        shape = (1,) * (len(oshape) - len(graph.tensors[name].shape)) + tuple(graph.tensors[name].shape)
        return [shape[k] != 1 for k in keep]

    masks = {n: mask(n) for n in names}
    groups = []   # merged output axes: [size, mask per operand]
    for j, k in enumerate(keep):
        col = tuple(masks[n][j] for n in names)
        if groups and groups[-1][1] == col:
            groups[-1][0] *= oshape[k]
        else:
            groups.append([oshape[k], col])
    groups = groups or [[1, tuple(True for _ in names)]]
    ops = []
    for i, (name, kind) in enumerate(ins + outs):
        view = tuple(size if col[i] else 1 for size, col in groups)
        axes = tuple(Axis("E" if j == 0 and col[i] else None) for j, (_, col) in enumerate(groups))
        ops.append(tensor(graph, name, kind, axes, view))
    ops += [derived(name, (nbytes,), 1, (Axis(),)) for name, nbytes in consts]
    size = graph.tensors[outs[0][0]].size
    dims = (Dim("E", groups[0][0]), Dim("L", size // groups[0][0], tile=False))
    return TileSpec(dims, tuple(ops), elems=size * elems_per_item, sub=lambda tile: ({}, {}))


def rowwise(node, graph, view, elems_per_item: int = 1, consts=()) -> TileSpec | None:
    """Row-wise ops (softmax, normalisations): the rows (outer, inner) of `view` = (outer, L, inner)
    are tiled, each row whole; every activation operand is viewed as (outer, its own row length,
    inner), so row scales beside the rows fit too. `consts`: whole derived constants [(name, bytes)];
    constant graph inputs (gamma, beta) and one-element inputs (a row count) are whole."""
    o, L, i = view
    ins, outs = inputs_outputs(node, graph)
    ops = []
    for name, kind in ins + outs:
        size = graph.tensors[name].size
        if kind == "const" or (kind == "in" and size == 1 and o * i > 1):
            ops.append(tensor(graph, name, kind, (Axis(),), (size,)))
        elif size % (o * i):
            return None
        else:
            ops.append(tensor(graph, name, kind, (Axis("O"), Axis(), Axis("I")), (o, size // (o * i), i)))
    ops += [derived(name, (nbytes,), 1, (Axis(),)) for name, nbytes in consts]
    return TileSpec((Dim("O", o), Dim("L", L, tile=False), Dim("I", i)), tuple(ops),
                    elems=o * L * i * elems_per_item)
