"""The op-file contract: everything about one operator in one place.

Each module in `ops/` registers `OpDef`s. An OpDef says how to run the node in numpy with the exact
arithmetic of its C kernel (`golden`), how many MACs it performs, how to call its C kernel
(`emit`) and how it uses memory (`inplace`: the output may overwrite input 0; `alias`: the output is
input 0 reinterpreted, no code at all; `scratch`: bytes its kernel needs while it runs, given the
target's kernel description, which the memory plan places like any buffer and `ctx.scratch` hands
out; `tiling`: how the node may be cut into tiles for a small fast memory, a TileSpec of
ops/tiles.py, or None where it runs on whole tensors).

Row-wise ops (`rows` set) take a leading row axis on every activation input and output, and row r
of the outputs depends only on rows <= r of the inputs (rows < r only through state the op wrote
while computing them, as attention does with its KV cache). Their kernels compute the first n rows,
n the value of input `rows` (all rows when that input is omitted); `pos` names an input holding the
position of row 0. Such ops can run on blocks of rows (passes/row_blocks.py), so their `emit` takes
the row count and position from `ctx.rows(node)` and `ctx.pos(node)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import TinydeployError

if TYPE_CHECKING:
    from ..codegen.context import EmitContext
    from ..ir import Graph, Node
    from .kernels import Kernels
    from .tiles import TileSpec

Golden = Callable[["Node", "Graph", list], list]
Emit = Callable[["Node", "Graph", "EmitContext"], str]


@dataclass(frozen=True)
class OpDef:
    name: str
    golden: Golden
    emit: Emit | None = None
    macs: Callable[["Node", "Graph"], int] | None = None
    inplace: bool | Callable[["Node", "Graph"], bool] = False   # or per node
    alias: bool = False
    lower: Callable | None = None  # QdqMatch, Graph -> list[Node] | None (integer lowering)
    header: str | None = None   # runtime header (relative to runtime/) the emitted call needs
    scratch: Callable[["Node", "Graph", "Kernels"], int] | None = None  # bytes live only during the node
    tiling: Callable[["Node", "Graph"], "TileSpec | None"] | None = None   # schedule/tiling.py
    rows: int | None = None     # row-wise op: index of its run-time row-count input (see above)
    pos: int | None = None      # row-wise op: index of its input holding the position of row 0


OPS: dict[str, OpDef] = {}


def register(name: str, **kw) -> Callable[[Golden], Golden]:
    """Decorator on the golden function: `@register("Relu", emit=..., macs=...)`."""

    def wrap(fn: Golden) -> Golden:
        if name in OPS:
            raise RuntimeError(f"op {name} registered twice")
        OPS[name] = OpDef(name=name, golden=fn, **kw)
        return fn

    return wrap


def get(node: "Node") -> OpDef:
    load_all()
    op = OPS.get(node.op)
    if op is None:
        raise TinydeployError(f"node {node.name}: operator {node.op} is not supported")
    return op


def node_scratch(node: "Node", graph: "Graph", kernels: "Kernels") -> int:
    op = get(node)
    return int(op.scratch(node, graph, kernels)) if op.scratch else 0


def node_inplace(node: "Node", graph: "Graph") -> bool:
    op = get(node)
    return bool(op.inplace(node, graph) if callable(op.inplace) else op.inplace)


def node_macs(node: "Node", graph: "Graph") -> int:
    op = get(node)
    return int(op.macs(node, graph)) if op.macs else 0


_loaded = False


def load_all() -> None:
    """Import every op module once so their registrations run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    from .. import ops

    for m in pkgutil.iter_modules(ops.__path__):
        if m.name not in ("registry", "common"):
            importlib.import_module(f"{ops.__name__}.{m.name}")


def prod(shape) -> int:
    return math.prod(int(d) for d in shape)   # Python integers: no int64 wrap-around
