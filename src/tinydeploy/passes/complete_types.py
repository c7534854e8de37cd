"""Fill in static shapes and dtypes that ONNX inference left open, by running the golden model on
zeros: the golden functions are the shape rules, so they can never disagree with the kernels."""
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
        return graph
    zeros = {n: np.zeros(graph.tensors[n].shape, graph.tensors[n].dtype) for n in graph.inputs}
    env = run_graph(graph, zeros, keep_all=True)
    for name, t in graph.tensors.items():
        if name in env and (t.shape is None or t.dtype is None):
            v = np.asarray(env[name])
            t.shape, t.dtype = tuple(v.shape), v.dtype
    return graph
