"""The op-file contract: everything about one operator in one place.

Each module in `ops/` registers `OpDef`s. An OpDef says how to run the node in numpy with the exact
arithmetic of its C kernel (`golden`), how many MACs it performs, how to call its C kernel
(`emit`) and how it uses memory (`inplace`: the output may overwrite input 0; `alias`: the output is
input 0 reinterpreted, no code at all; `scratch`: bytes its kernel needs while it runs, given the
target's kernel description, which the memory plan places like any buffer and `ctx.scratch` hands
out; `tiling`: how the node may be cut into tiles for a small fast memory, a TileSpec of
ops/tiles.py, or None where it runs on whole tensors).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

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
    inplace: bool = False
    alias: bool = False
    lower: Callable | None = None  # QdqMatch, Graph -> list[Node] | None (integer lowering)
    header: str | None = None   # runtime header (relative to runtime/) the emitted call needs
    scratch: Callable[["Node", "Graph", "Kernels"], int] | None = None  # bytes live only during the node
    tiling: Callable[["Node", "Graph"], "TileSpec | None"] | None = None   # schedule/tiling.py


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
    return int(np.prod(shape, dtype=np.int64))
