"""What an op's `emit` sees: C names and pointer expressions for tensors and for the node's planned
scratch, and a place to declare constant arrays (weights, multipliers, tables) that the call needs."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..ir import Graph
from ..ops import registry
from .ctext import c_array_body, ctype, scratch_layout

if TYPE_CHECKING:
    from ..ops.kernels import Kernels


class EmitContext:
    def __init__(self, graph: Graph, offsets: dict[str, int], prefix: str, kernels: Kernels):
        self.graph = graph
        self.kernels = kernels      # the target's kernel variants and costs (ops/kernels.py)
        self.offsets = offsets      # tensor name → byte offset in the arena (alias groups resolved)
        self.prefix = prefix
        self.decls: list[str] = []
        self.headers: set[str] = {"td_common.h"}
        self._idents: set[str] = set()
        self._next: dict[str, int] = {}    # per base name, the suffix to try next
        self._const_done: dict[str, str] = {}
        self._layer = ("", 0, 0, 0)  # node name, planned scratch offset and bytes, bytes handed out
        self.block = None           # the schedule.blocks.Region being emitted (C variables r_, b_)

    def ident(self, hint: str) -> str:
        """A fresh C identifier from any string."""
        base = self.prefix + re.sub(r"[^0-9A-Za-z_]", "_", hint)[:48]
        k = self._next.get(base, 0)
        name = f"{base}_{k}" if k else base
        while name in self._idents:
            k += 1
            name = f"{base}_{k}"
        self._next[base] = k + 1
        self._idents.add(name)
        return name

    def ctype(self, name: str) -> str:
        return ctype(self.graph.tensors[name].dtype)

    def ptr(self, name: str) -> str:
        """Typed pointer expression for a tensor: a constant array or a place in the arena."""
        if not name:
            return "NULL"
        t = self.graph.tensors[name]
        if t.state:
            if name not in self._const_done:
                sym = self.ident("state_" + name)
                self.decls.append(f"{ctype(t.dtype)} {sym}[{max(t.size, 1)}];  /* persistent state */")
                self._const_done[name] = sym
            return self._const_done[name]
        if t.is_const:
            if name not in self._const_done:
                self._const_done[name] = self.array(name, t.data)
            return self._const_done[name]
        p = f"(({ctype(t.dtype)} *)({self.prefix}arena + {self.offsets[name]}))"
        if self.block is not None and name in self.block.external:  # row r_ of a whole tensor
            return f"({p} + r_ * {t.size // t.shape[0]})"
        return p

    def emit(self, node, op) -> str | None:
        """The C of one node (None: the op has no kernel); a target's context may emit it its own way
        (e.g. the cluster's tile loops)."""
        return op.emit(node, self.graph, self) if op.emit else None

    def begin_layer(self, node: str, offset: int = 0, nbytes: int = 0) -> None:
        """The node about to emit and its scratch buffer in the arena, as the memory plan placed it."""
        self._layer = (node, offset, nbytes, 0)

    def rows(self, node) -> str:
        """C expression of a row-wise node's run-time row count (ops/registry.py): b_ in a row block."""
        if self.block is not None:
            return "b_"
        i = registry.get(node).rows
        n = node.inputs[i] if i < len(node.inputs) else ""
        return f"{self.ptr(n)}[0]" if n else str(self.graph.tensors[node.outputs[0]].shape[0])

    def pos(self, node) -> str:
        """C expression of the position of a row-wise node's row 0 (of the block's row r_)."""
        p = f"{self.ptr(node.inputs[registry.get(node).pos])}[0]"
        return f"({p} + r_)" if self.block is not None else p

    def far(self, name: str, window_bytes: int) -> tuple[str, str] | None:
        """For a state tensor homed where the cores reach it only by DMA (the cluster's L2 KV caches):
        the near window a kernel streams it through (at least `window_bytes`, one shared by every such
        kernel) and the variable holding the transfer `early` started for it. None: addressed directly."""
        return None

    def early(self, code: str) -> None:
        """C statements (core 0) that start the current layer's transfers ahead of it: after the last
        layer that did so in the same row-block loop, or at the loop's start (a context with `far`)."""
        raise RuntimeError("early transfers need a context with far memory")

    def open_block(self, region) -> str:
        """The loop over blocks of a region: rows [r_, r_ + b_)."""
        n = f"{self.ptr(region.count)}[0]" if region.count else str(region.rows)
        self.block = region
        R = region.block
        return (f"for (int32_t r_ = 0, n_ = {n}; r_ < n_; r_ += {R}) {{  /* row block {region.index}: "
                f"{R} rows at a time */\nconst int32_t b_ = n_ - r_ < {R} ? n_ - r_ : {R};\n")

    def copy_in(self, node) -> str:
        """For a kernel that works in place on output 0: copies input 0's rows there first, unless
        the planner put both at the same place."""
        o, i = node.outputs[0], node.inputs[0]
        if self.offsets.get(o) == self.offsets.get(i):
            return ""
        t = self.graph.tensors[i]
        return (f"__builtin_memcpy({self.ptr(o)}, {self.ptr(i)}, (size_t)({self.rows(node)}) * "
                f"{t.nbytes // max(t.shape[0], 1)});\n")

    def end_layer(self, code: str = "") -> dict:
        """Close the layer whose C text is `code`; returns fields for its record (none here; a
        target's context may add some, e.g. the transfers a layer needs)."""
        node, _, planned, used = self._layer
        if used != planned:  # the op's `scratch` and its `emit` disagree: a bug, not a user error
            raise RuntimeError(f"node {node}: {planned} bytes of scratch planned, {used} emitted")
        return {}

    def template_fields(self) -> dict:
        """Extra fields for the network templates (a target's context may add some)."""
        return {}

    def scratch(self, pieces) -> list[str]:
        """Pointer expressions to the node's scratch pieces [(dtype, count), ...] (padded copies,
        transform tiles): a buffer of the memory plan, live only while the node runs."""
        node, base, planned, _ = self._layer
        offsets, used = scratch_layout(pieces)
        self._layer = (node, base, planned, used)
        return [f"(({ctype(dt)} *)({self.prefix}arena + {base + off}))" for (dt, _), off in zip(pieces, offsets)]

    def records(self, hint: str, ctype_: str, rows: np.ndarray) -> str:
        """Declare `static const ctype_ name[n] = {{...}, ...}`, a C struct of int32 fields per row
        (e.g. td_rq_t), and return its name."""
        name = self.ident(hint)
        body = ",\n  ".join("{" + ", ".join(str(int(v)) for v in r) + "}" for r in rows)
        self.decls.append(f"static const {ctype_} {name}[{len(rows)}] = {{\n  {body}\n}};")
        return name

    def array(self, hint: str, values, dtype=None) -> str:
        """Declare `static const T name[N] = {...}` and return its name."""
        values = np.asarray(values, dtype=dtype)
        name = self.ident(hint)
        self.decls.append(f"static const {ctype(values.dtype)} {name}[{max(values.size, 1)}] = "
                          f"{c_array_body(values)};")
        return name
