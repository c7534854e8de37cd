"""int8 Clips folded into the integer kernel before them (a sunk Relu; torch's reduce_range
fake-quant, Q → Clip(0, 127) → DQ, when its QuantizeLinear was not part of a lowered pattern)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .lower_qdq import int_clip


def fold_int_clips(graph: Graph) -> Graph:
    """An int8 Clip (a sunk Relu, torch's reduce_range clamp) right after an integer kernel with an
    output clamp (lo, hi) or a lookup table narrows that clamp / table instead of running."""
    drop = set()
    uses = graph.uses()
    producer: dict[str, object] = {}   # kept current: a folded Clip's output now comes from p
    for clip in graph.nodes:
        x = clip.inputs[0] if clip.op == "Clip" and graph.tensors[clip.outputs[0]].dtype == np.int8 else None
        p = producer.get(x) or uses.producer(x) if x else None
        bounds = int_clip(clip, graph) if p is not None else None
        if bounds is None or x in graph.outputs or len(uses.consumers(x)) != 1 \
                or not ({"lo", "hi"} <= p.attrs.keys() or p.op == "QLut"):
            continue
        lo, hi = (-128 if bounds[0] is None else bounds[0]), (127 if bounds[1] is None else bounds[1])
        if p.op == "QLut":
            p.attrs["table"] = np.clip(p.attrs["table"], lo, hi).astype(np.int8)
        else:
            p.attrs["lo"], p.attrs["hi"] = max(p.attrs["lo"], lo), min(p.attrs["hi"], hi)
        p.outputs = [clip.outputs[0]]
        producer[clip.outputs[0]] = p
        drop.add(id(clip))
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    return graph
