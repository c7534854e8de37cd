"""Infer every shape and dtype by running the golden model on zeros: the golden functions are the
shape rules, so they can never disagree with the kernels. What the model file states (or ONNX
inference derives) is never trusted, only checked: a buffer sized from a wrong declared shape is an
out-of-bounds write in the generated C."""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..golden import run_graph
from ..ir import Graph


def complete_types(graph: Graph) -> Graph:
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.shape is None:
            raise TinydeployError(f"input '{name}' has no static shape; give it with --shape {name}=1x3x32x32")
    if all(t.shape is not None and t.dtype is not None for t in graph.tensors.values()):
        return graph  # built by our own code (the llama graph), not read from a file
    zeros = {n: np.zeros(graph.tensors[n].shape, graph.tensors[n].dtype) for n in graph.inputs}
    with np.errstate(all="ignore"):  # zeros divide by zero; only shapes matter here
        env = run_graph(graph, zeros, keep_all=True)
    for node in graph.nodes:
        for name in node.outputs:
            if not name or name not in env:
                continue
            v = np.asarray(env[name])
            for dims, dtype, who in graph.stated.get(name, ()):
                _check(node, name, v, dims, dtype, who)
            t = graph.tensors[name]
            t.shape, t.dtype = tuple(v.shape), v.dtype
    return graph


def _check(node, name: str, v: np.ndarray, dims, dtype, who: str) -> None:
    """One line naming node, tensor, stated vs inferred; dims may hold None (unknown) entries."""
    shape_ok = dims is None or (len(dims) == v.ndim and all(d is None or d == s for d, s in zip(dims, v.shape)))
    if shape_ok and (dtype is None or np.dtype(dtype) == v.dtype):
        return
    stated = ("?" if dims is None else str([d if d is not None else "?" for d in dims]).replace("'", "")) + \
        ("" if dtype is None else f" {np.dtype(dtype)}")
    raise TinydeployError(f"node {node.name} ({node.op}): tensor '{name}' is {list(v.shape)} {v.dtype}, "
                          f"but {who} {stated}")
