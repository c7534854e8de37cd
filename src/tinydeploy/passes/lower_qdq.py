"""DequantizeLinear → float op (→ Relu/Clip) → QuantizeLinear  ⇒  one integer kernel.

Each op module says how its op lowers (OpDef.lower); this pass finds the pattern, collects the
quantization parameters and hands a `QdqMatch` over. It runs after to_int8, lut and split_to_slices
(passes/pipeline.py). What matches nothing stays a float op between DequantizeLinear /
QuantizeLinear kernels (correct, but not integer-only).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, Node, Quant
from ..ir.graph import Uses
from ..ops import registry
from ..ops.quant import BiasIn, bias_in
from ..ops.requant import requant_node
from .fuse_activation import clip_bounds


@dataclass
class QIn:
    name: str                 # the int8 tensor
    q: Quant
    const: np.ndarray | None  # its value if constant (weights, int32 bias)


@dataclass
class QdqMatch:
    node: Node
    ins: list[QIn | None]     # per input of node: quantized source, or None (float const / omitted)
    out: str                  # int8 output tensor (the QuantizeLinear's output)
    out_q: Quant
    act: tuple | None         # float (lo, hi) of a Relu/Clip between node and QuantizeLinear
    bias: BiasIn | None = None  # an Add of a constant between node and Relu/Clip/QuantizeLinear
    clamp: tuple = (None, None)  # int8 bounds of a Clip on the QuantizeLinear's output (torch's
                                 # reduce_range fake-quant: Q → Clip(0, 127) → DQ)
    tail: list = field(default_factory=list)  # the nodes after `node` that the lowering replaces
    pooled: int = 0           # MatMul/Gemm whose input 0 is GlobalAveragePool(DQ(x)): its H·W (ins[0] is x)


# ops whose lowering takes a bias after them, and their output channel axis
BIAS_AXIS = {"Conv": 1, "MatMul": -1, "Gemm": -1}


def dq_quant(node: Node, graph: Graph) -> Quant | None:
    """Quant of a DequantizeLinear / QuantizeLinear with constant parameters."""
    scale = graph.const(node.inputs[1])
    if scale is None:
        return None
    zp = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if len(node.inputs) > 2 and node.inputs[2] and zp is None:
        return None
    zp = np.zeros_like(scale, dtype=np.int32) if zp is None else zp.astype(np.int32)
    axis = node.attr("axis", 1) if scale.size > 1 else None
    if node.attr("block_size", 0):
        return None
    return Quant(scale.astype(np.float32).reshape(-1), zp.reshape(-1), axis)


def _source(name: str, graph: Graph, uses: Uses) -> QIn | None:
    p = uses.producer(name)
    if p is None or p.op != "DequantizeLinear":
        return None
    x = p.inputs[0]
    if graph.tensors[x].dtype not in (np.int8, np.int32):
        return None
    q = dq_quant(p, graph)
    if q is None:
        return None
    if q.axis is not None and q.axis < 0:
        q.axis += len(graph.tensors[x].shape)
    return QIn(x, q, graph.const(x))


def _bias_add(node: Node, add: Node, graph: Graph, uses: Uses) -> BiasIn | None:
    """The constant of `node → Add(constant)` as a per-output-channel bias, or None."""
    y = node.outputs[0]
    others = [i for i in add.inputs if i != y]
    if len(add.inputs) != 2 or len(others) != 1 or add.outputs[0] in graph.outputs:
        return None
    yshape, bshape = graph.tensors[y].shape, graph.tensors[others[0]].shape
    if graph.tensors[add.outputs[0]].shape != yshape or len(bshape) > len(yshape):
        return None
    axis = BIAS_AXIS[node.op] % len(yshape)
    full = (1,) * (len(yshape) - len(bshape)) + tuple(bshape)
    if any(d != 1 for k, d in enumerate(full) if k != axis) or full[axis] not in (1, yshape[axis]):
        return None
    src = _source(others[0], graph, uses)
    if src is not None and src.q.per_channel and src.q.axis != axis - (len(full) - len(bshape)):
        return None
    return bias_in(src, graph.const(others[0]))


def _pooled(name: str, graph: Graph, uses: Uses) -> tuple[QIn, int] | None:
    """(x, H·W) when `name` is GlobalAveragePool(DQ(x)) of a [1, C, H, W] int8 tensor seen through
    Flatten / Reshape / Squeeze: torch's QAT classifier head, whose pool has no quantizer."""
    p = uses.producer(name)
    while p is not None and p.op in ("Flatten", "Reshape", "Squeeze") and len(uses.consumers(p.outputs[0])) == 1:
        p = uses.producer(p.inputs[0])
    if p is None or p.op != "GlobalAveragePool" or len(uses.consumers(p.outputs[0])) != 1:
        return None
    src = _source(p.inputs[0], graph, uses)
    shape = graph.tensors[p.inputs[0]].shape
    if src is None or src.const is not None or src.q.per_channel or len(shape) != 4 or shape[0] != 1 \
            or graph.tensors[name].shape not in ((1, shape[1]), (shape[1],)):
        return None
    return src, shape[2] * shape[3]


def match(node: Node, graph: Graph, uses: Uses) -> QdqMatch | None:
    ins = []
    pooled = _pooled(node.inputs[0], graph, uses) if node.op in ("MatMul", "Gemm") and \
        _source(node.inputs[0], graph, uses) is None else None
    for k, i in enumerate(node.inputs):
        if k == 0 and pooled:
            ins.append(pooled[0])
            continue
        src = _source(i, graph, uses) if i else None
        # a non-quantized input must be a constant, or integer/bool data (Gather indices,
        # Where's condition), which integer kernels read as it is
        if src is None and i and not graph.tensors[i].is_const and np.dtype(graph.tensors[i].dtype).kind not in "iub":
            return None
        ins.append(src)
    if not any(ins) or len(node.outputs) != 1 or node.outputs[0] in graph.outputs:
        return None
    users = uses.consumers(node.outputs[0])
    tail = []
    bias = None
    if node.op in BIAS_AXIS and len(users) == 1 and users[0].op == "Add":
        bias = _bias_add(node, users[0], graph, uses)
        if bias is None:
            return None
        tail.append(users[0])
        users = uses.consumers(users[0].outputs[0])
    act = None
    if len(users) == 1 and users[0].op in ("Relu", "Clip"):
        act = clip_bounds(users[0], graph)
        if act is None or users[0].outputs[0] in graph.outputs:
            return None
        tail.append(users[0])
        users = uses.consumers(users[0].outputs[0])
    if len(users) != 1 or users[0].op != "QuantizeLinear":
        return None
    q = dq_quant(users[0], graph)
    out = users[0].outputs[0]
    if q is None or q.per_channel or graph.tensors[out].dtype != np.int8:
        return None
    tail.append(users[0])
    clamp = (None, None)
    users = uses.consumers(out)
    if len(users) == 1 and users[0].op == "Clip" and out not in graph.outputs \
            and graph.tensors[users[0].outputs[0]].dtype == np.int8 and (clamp := int_clip(users[0], graph)):
        tail.append(users[0])
        out = users[0].outputs[0]
    graph.tensors[out].quant = q
    return QdqMatch(node, ins, out, q, act, bias, clamp or (None, None), tail, pooled[1] if pooled else 0)


def int_clip(node: Node, graph: Graph) -> tuple | None:
    """(lo, hi) of a Clip with constant integer bounds (None where absent), or None."""
    b = clip_bounds(node, graph)
    return None if b is None else tuple(None if v is None else int(v) for v in b)


def _lower_dq_q(q: Node, graph: Graph, rename: dict, uses: Uses) -> list[Node] | None:
    """DequantizeLinear → QuantizeLinear (a requantization, as tf2onnx writes TFLite's QUANTIZE of an
    int8 tensor): nothing at equal parameters (consumers read the int8 tensor), else one QRequant."""
    dq = uses.producer(q.inputs[0])
    src = _source(q.inputs[0], graph, uses) if dq is not None and dq.op == "DequantizeLinear" else None
    out_q = dq_quant(q, graph)
    out = q.outputs[0]
    if src is None or src.const is not None or src.q.per_channel or out_q is None or out_q.per_channel \
            or graph.tensors[src.name].dtype != np.int8 or graph.tensors[out].dtype != np.int8:
        return None
    graph.tensors[out].quant = out_q
    same = np.float32(src.q.scale[0]) == np.float32(out_q.scale[0]) and src.q.zero_point[0] == out_q.zero_point[0]
    if same and out not in graph.outputs:
        rename[out] = src.name
        return []
    if same:
        return [Node("Identity", q.name, [src.name], [out])]
    m = QdqMatch(dq, [src], out, out_q, None)
    return [requant_node(m, graph, src.name, src.q, graph.tensors[src.name].shape, after=out)[0]]


def lower_qdq(graph: Graph) -> Graph:
    uses = graph.uses()   # a snapshot: nodes are rewired only at the end (rename)
    done: set[int] = set()
    new_nodes = []
    rename: dict[str, str] = {}
    for node in graph.nodes:
        if id(node) in done:
            continue
        if node.op == "QuantizeLinear" and (pair := _lower_dq_q(node, graph, rename, uses)) is not None:
            new_nodes.extend(pair)
            continue
        op = registry.get(node)
        m = match(node, graph, uses) if op.lower else None
        lowered = op.lower(m, graph) if m else None
        if lowered is None:
            new_nodes.append(node)
            continue
        done.update(id(n) for n in m.tail)   # the Add, Relu/Clip, QuantizeLinear of the pattern
        new_nodes.extend(lowered)
    for n in new_nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
    graph.nodes = new_nodes
    graph.prune()
    return graph
