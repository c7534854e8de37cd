"""The numpy golden model: runs an ir.Graph op by op with the exact arithmetic of the C kernels."""
from __future__ import annotations

import numpy as np

from .errors import TinydeployError
from .ir import Graph
from .ops import registry


def init_state(graph: Graph) -> dict[str, np.ndarray]:
    """Zeroed persistent tensors (as the C side's static buffers start)."""
    return {k: np.zeros(t.shape, t.dtype) for k, t in graph.tensors.items() if t.state}


def run_graph(graph: Graph, inputs: dict[str, np.ndarray], keep_all: bool = False,
              state: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Outputs by name (every tensor if keep_all). `state` arrays are updated in place by the ops."""
    env: dict[str, np.ndarray] = {k: t.data for k, t in graph.tensors.items() if t.is_const}
    env.update(state if state is not None else init_state(graph))
    for name in graph.inputs:
        if name not in inputs:
            raise TinydeployError(f"no value given for graph input '{name}'")
        env[name] = np.asarray(inputs[name])
    for node in graph.nodes:
        args = [env[i] if i else None for i in node.inputs]
        try:
            outs = registry.get(node).golden(node, graph, args)
        except TinydeployError:
            raise
        except Exception as e:
            raise TinydeployError(f"node {node.name} ({node.op}): {type(e).__name__}: {e}") from e
        for name, value in zip(node.outputs, outs):
            if name:
                env[name] = value
    if keep_all:
        return env
    return {o: env[o] for o in graph.outputs}
