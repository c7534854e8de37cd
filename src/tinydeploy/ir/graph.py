"""The typed graph IR: plain dataclasses, no behaviour beyond lookups and validation.

Every stage after the frontend works on a `Graph`: tensors by name (static shapes, numpy dtypes,
optional constant data, optional affine quantization), nodes in topological order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TinydeployError


# inputs whose shape or type is read, never their values
_TYPE_ONLY = {"Shape": (0,), "Size": (0,), "EyeLike": (0,), "CastLike": (1,)}


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point); per-tensor (axis None) or per-channel."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None  # constant value (weights, folded shapes)
    quant: Quant | None = None       # set on integer activations and weights after lowering
    state: bool = False              # persistent across runs (e.g. a KV cache): own static buffer,
                                     # not in the arena; ops that take it as input may update it

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return math.prod(int(d) for d in self.shape)   # Python integers: a size never wraps around

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]                 # "" marks an omitted optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    # what the model file or ONNX inference says a tensor's type is: (dims, None where unknown; dtype;
    # who says so). Never used for buffers: passes/complete_types.py checks it against our inference.
    stated: dict[str, list[tuple]] = field(default_factory=dict)
    const_limit: object = None   # limits.ConstLimit: constants the target holds (None: limits.HOST_CONST)
    # float32 graph inputs whose values the caller states are integers of a type (passes/integerize.py)
    integer_inputs: dict[str, np.dtype] = field(default_factory=dict)

    def t(self, name: str) -> Tensor:
        return self.tensors[name]

    def uses(self) -> Uses:
        """Producer and consumers of every tensor in one pass: lookups in O(1) for a pass that
        queries many (Graph.producer and .consumers scan all nodes). A snapshot: stale once
        nodes are rewired."""
        return Uses(self.nodes)

    def producer(self, name: str) -> Node | None:
        for n in self.nodes:
            if name in n.outputs:
                return n
        return None

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def from_input_values(self, name: str) -> bool:
        """True when the value of `name` depends on the values of graph inputs, not only on their
        shapes or types: such a value cannot size anything at compile time."""
        producers = {o: n for n in self.nodes for o in n.outputs}
        stack, seen = [name], set()
        while stack:
            v = stack.pop()
            if v in self.inputs:
                return True
            p = producers.get(v)
            if v not in seen and p is not None:
                skip = _TYPE_ONLY.get(p.op, ())
                stack.extend(i for k, i in enumerate(p.inputs) if i and k not in skip)
            seen.add(v)
        return False

    def const(self, name: str) -> np.ndarray | None:
        """Constant value of an input name ('' or non-constant gives None)."""
        if not name:
            return None
        return self.tensors[name].data

    def add_const(self, name: str, value: np.ndarray, quant: Quant | None = None) -> str:
        name = self.unique(name)
        value = np.asarray(value)
        self.tensors[name] = Tensor(name, tuple(value.shape), value.dtype, value, quant)
        return name

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    def prune(self) -> None:
        """Drop nodes whose outputs nobody uses and tensors nothing references."""
        live = set(self.outputs)
        kept = []
        for n in reversed(self.nodes):
            if not live.isdisjoint(n.outputs):
                kept.append(n)
                live.update(n.inputs)
                live.discard("")   # an omitted input keeps nothing alive
        self.nodes = kept[::-1]
        live.update(self.inputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in live}

    def validate(self) -> None:
        """Check the invariants every stage relies on: defined-before-use, known tensors, static shapes."""
        known = set(self.inputs) | {k for k, t in self.tensors.items() if t.is_const or t.state}
        for n in self.nodes:
            for i in n.inputs:
                if i and i not in known:
                    raise TinydeployError(f"node {n.name} ({n.op}): input '{i}' is not produced before use")
            for o in n.outputs:
                if o not in self.tensors:
                    raise TinydeployError(f"node {n.name} ({n.op}): output '{o}' has no type")
                known.add(o)
        for o in self.outputs:
            if o not in known:
                raise TinydeployError(f"graph output '{o}' is never produced")


class Uses:
    """Graph.producer / Graph.consumers answered from maps (see Graph.uses), built at the first
    question (many passes have none to ask on most graphs)."""

    def __init__(self, nodes: list[Node]):
        self._nodes = list(nodes)
        self._producer: dict[str, Node] | None = None
        self._consumers: dict[str, list[Node]] = {}
        self._position: dict[int, int] = {}

    def _index(self) -> dict[str, Node]:
        if self._producer is None:
            self._producer = {}
            for n in self._nodes:
                for i in dict.fromkeys(n.inputs):
                    self._consumers.setdefault(i, []).append(n)
                for o in n.outputs:
                    self._producer.setdefault(o, n)
        return self._producer

    def producer(self, name: str) -> Node | None:
        return self._index().get(name)

    def consumers(self, name: str) -> list[Node]:
        self._index()
        return list(self._consumers.get(name, ()))

    def in_order(self, nodes: list[Node]) -> list[Node]:
        """nodes sorted as the graph runs them."""
        if not self._position:
            self._position = {id(n): k for k, n in enumerate(self._nodes)}
        return sorted(nodes, key=lambda n: self._position[id(n)])
