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
    """Outputs by name (every tensor if keep_all). `state` arrays are updated in place by the ops.
    Constants and state are looked up when a node reads them: passes run one-node subgraphs over
    the whole tensor table, which must not cost a walk over every tensor."""
    state = state if state is not None else {}
    env: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise TinydeployError(f"no value given for graph input '{name}'")
        env[name] = np.asarray(inputs[name])

    def load(name: str) -> None:
        t = graph.tensors.get(name)
        if t is not None and t.is_const:
            env[name] = t.data
        elif t is not None and t.state:
            env[name] = state.setdefault(name, np.zeros(t.shape, t.dtype))

    for node in graph.nodes:
        for i in node.inputs:
            if i and i not in env:
                load(i)
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
    for o in graph.outputs:
        if o not in env:
            load(o)
    if keep_all:
        return env
    return {o: env[o] for o in graph.outputs}
