"""What an op's `emit` sees: C names and pointer expressions for tensors and for the node's planned
scratch, and a place to declare constant arrays (weights, multipliers, tables) that the call needs."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..ir import Graph

if TYPE_CHECKING:
    from ..ops.kernels import Kernels

CTYPES = {
    np.dtype(np.int8): "int8_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.int16): "int16_t",
    np.dtype(np.uint16): "uint16_t", np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t",
    np.dtype(np.float32): "float", np.dtype(np.bool_): "uint8_t", np.dtype(np.float64): "double",
    np.dtype(np.uint32): "uint32_t", np.dtype(np.uint64): "uint64_t",
}


def ctype(dtype) -> str:
    return CTYPES[np.dtype(dtype)]


def c_literal(v, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        f = float(v)
        if np.isnan(f):
            return "NAN"
        if np.isinf(f):
            return "INFINITY" if f > 0 else "-INFINITY"
        s = repr(float(np.float32(f))) if dtype == np.float32 else repr(f)
        return s + ("f" if dtype == np.float32 else "")
    if dtype == np.int64:
        return "INT64_MIN" if int(v) == -(1 << 63) else f"INT64_C({int(v)})"
    if dtype == np.uint64:
        return f"UINT64_C({int(v)})"
    if dtype == np.int32 and int(v) == -(1 << 31):
        return "INT32_MIN"
    return str(int(v))


def scratch_layout(pieces) -> tuple[list[int], int]:
    """Offsets of scratch pieces [(dtype, count), ...] placed one after another, 16-byte aligned, and
    the bytes they take: what an op's `scratch` declares and `EmitContext.scratch` hands out."""
    offsets, top = [], 0
    for dtype, count in pieces:
        offsets.append((top + 15) // 16 * 16)
        top = offsets[-1] + np.dtype(dtype).itemsize * count
    return offsets, top


def c_array_body(values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1)
    dtype = flat.dtype
    if dtype == np.bool_:
        flat, dtype = flat.astype(np.uint8), np.dtype(np.uint8)
    if dtype.kind in "iu" and dtype not in (np.int64, np.uint64):
        items = [str(x) for x in flat.tolist()]
        if dtype == np.int32:
            items = ["INT32_MIN" if x == str(-(1 << 31)) else x for x in items]
    else:
        items = [c_literal(x, dtype) for x in flat.tolist()]
    if not items:
        items = ["0"]
    lines = [", ".join(items[i:i + 24]) for i in range(0, len(items), 24)]
    return "{\n  " + ",\n  ".join(lines) + "\n}"


class EmitContext:
    def __init__(self, graph: Graph, offsets: dict[str, int], prefix: str, kernels: Kernels):
        self.graph = graph
        self.kernels = kernels      # the target's kernel variants and costs (ops/kernels.py)
        self.offsets = offsets      # tensor name → byte offset in the arena (alias groups resolved)
        self.prefix = prefix
        self.decls: list[str] = []
        self.headers: set[str] = {"td_common.h"}
        self._names: dict[str, str] = {}
        self._const_done: dict[str, str] = {}
        self._layer = ("", 0, 0, 0)  # node name, planned scratch offset and bytes, bytes handed out

    def ident(self, hint: str) -> str:
        """A fresh C identifier from any string."""
        base = self.prefix + re.sub(r"[^0-9A-Za-z_]", "_", hint)[:48]
        name, k = base, 1
        while name in self._names.values():
            name, k = f"{base}_{k}", k + 1
        self._names[f"{hint}#{len(self._names)}"] = name
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
        return f"(({ctype(t.dtype)} *)({self.prefix}arena + {self.offsets[name]}))"

    def begin_layer(self, node: str, offset: int = 0, nbytes: int = 0) -> None:
        """The node about to emit and its scratch buffer in the arena, as the memory plan placed it."""
        self._layer = (node, offset, nbytes, 0)

    def end_layer(self) -> None:
        node, _, planned, used = self._layer
        if used != planned:  # the op's `scratch` and its `emit` disagree: a bug, not a user error
            raise RuntimeError(f"node {node}: {planned} bytes of scratch planned, {used} emitted")

    def scratch(self, pieces) -> list[str]:
        """Pointer expressions to the node's scratch pieces [(dtype, count), ...] (padded copies,
        transform tiles): a buffer of the memory plan, live only while the node runs."""
        node, base, planned, _ = self._layer
        offsets, used = scratch_layout(pieces)
        self._layer = (node, base, planned, used)
        return [f"(({ctype(dt)} *)({self.prefix}arena + {base + off}))" for (dt, _), off in zip(pieces, offsets)]

    def array(self, hint: str, values, dtype=None) -> str:
        """Declare `static const T name[N] = {...}` and return its name."""
        values = np.asarray(values, dtype=dtype)
        name = self.ident(hint)
        self.decls.append(f"static const {ctype(values.dtype)} {name}[{max(values.size, 1)}] = "
                          f"{c_array_body(values)};")
        return name
