"""Float32 tensors that hold integers, computed in integers (Deeploy's files; docs/deeploy_dialect.md).

Deeploy's graphs declare float32 tensors that hold integers; its harness types each graph input from
its data. Given such input types (`Graph.integer_inputs`, which a caller sets from the data, as
benchmarks/deeploy_suite.py does), this pass tracks the integer range of every tensor that provably
holds integers and gives it an integer type, and its producer an integer form, wherever the graph's
float32 arithmetic is exact: Add, Sub, Mul and MatMul whose every result and partial sum is an integer
of magnitude <= 2^24 (float32 holds those exactly), so the integer result is the ONNX float result,
bit for bit. Data movement keeps its input's type; Deeploy's dialect ops (ops/deeploy*.py) take any
integer input and give their levels' type. Any other node stays float, its integer inputs cast back to
float32 (exact: the values are those the float graph held).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from ..golden import run_graph
from ..ir import Graph, Node
from ..ops import registry

EXACT = 1 << 24                  # float32 represents every integer up to here
MOVE = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Slice", "Gather", "Concat",
        "Expand", "Tile"}         # output elements are input-0 elements (Concat: of every input)
ARITH = {"Add", "Sub", "Mul"}
INT_TYPES = [np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32)]


def dialect_op(node) -> bool:
    """One of Deeploy's dialect ops (their op files are ops/deeploy*.py): integer in, levels out."""
    return node.op in registry.OPS and registry.OPS[node.op].golden.__module__.split(".")[-1].startswith("deeploy")


def fits(lo: int, hi: int) -> np.dtype:
    """The narrowest integer type holding [lo, hi] (int32 if none does)."""
    return next((t for t in INT_TYPES if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), np.dtype(np.int32))


def integerize(graph: Graph) -> Graph:
    if not graph.integer_inputs:
        return graph
    registry.load_all()
    rng: dict[str, tuple[int, int]] = {}
    for name, dt in graph.integer_inputs.items():
        graph.tensors[name].dtype = np.dtype(dt)
        rng[name] = (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
    nodes: list[Node] = []
    cast_cache: dict[tuple[str, np.dtype], str] = {}

    def const_range(name):
        t = graph.tensors.get(name)
        if t is None or not t.is_const or t.dtype != np.float32 or t.size == 0:
            return None
        v = t.data.astype(np.float64)
        if not np.all(v == np.round(v)) or np.abs(v).max() > EXACT:
            return None
        return int(v.min()), int(v.max())

    def range_of(name):
        return rng.get(name) or const_range(name)

    def as_type(name: str, dt) -> str:
        """`name` as a tensor of type dt: the tensor itself, a converted constant, or a Cast node."""
        t, dt = graph.tensors[name], np.dtype(dt)
        if t.dtype == dt:
            return name
        if (name, dt) not in cast_cache:
            if t.is_const:
                out = graph.add_const(f"{name}_{dt.name}", t.data.astype(dt))
            else:
                out = graph.unique(f"{name}_{dt.name}")
                graph.tensors[out] = type(t)(out, t.shape, dt)
                nodes.append(Node("Cast", graph.unique(f"cast_{out}"), [name], [out],
                                  {"to": helper.np_dtype_to_tensor_dtype(dt), "_opset": 13}))
            cast_cache[(name, dt)] = out
        return cast_cache[(name, dt)]

    def retype(node, dt, lo, hi):
        out = graph.tensors[node.outputs[0]]
        out.dtype, rng[node.outputs[0]] = np.dtype(dt), (lo, hi)

    for node in graph.nodes:
        data = [i for i in node.inputs[:len(node.inputs) if node.op == "Concat" else 1] if i]
        r = [range_of(i) for i in node.inputs if i]
        if node.op in MOVE and data and all(range_of(i) for i in data) and len(node.outputs) == 1:
            lo, hi = min(range_of(i)[0] for i in data), max(range_of(i)[1] for i in data)
            dt = fits(lo, hi) if node.op == "Concat" or graph.tensors[data[0]].is_const else graph.tensors[data[0]].dtype
            node.inputs = [as_type(i, dt) if i in data else i for i in node.inputs]
            retype(node, dt, lo, hi)
        elif node.op in ARITH and len(r) == 2 and all(r):
            (alo, ahi), (blo, bhi) = r
            if node.op == "Mul":
                p = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
                lo, hi = min(p), max(p)
            else:
                lo, hi = (alo + blo, ahi + bhi) if node.op == "Add" else (alo - bhi, ahi - blo)
            if max(-lo, hi) > EXACT:
                node.inputs = [as_type(i, np.float32) for i in node.inputs]
            else:   # integer kernels of these ops are int32
                node.inputs = [as_type(i, np.int32) for i in node.inputs]
                retype(node, np.int32, lo, hi)
        elif node.op == "MatMul" and len(r) == 2 and all(r):
            k = graph.tensors[node.inputs[0]].shape[-1]
            (alo, ahi), (blo, bhi) = r
            p = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
            lo, hi = k * min(min(p), 0), k * max(max(p), 0)   # every partial sum lies within too
            if max(-lo, hi) > EXACT:
                node.inputs = [as_type(i, np.float32) for i in node.inputs]
            else:
                small = [fits(*x) for x in r]
                w = graph.tensors[node.inputs[1]]
                if small == [np.int8, np.int8] and w.is_const and len(w.shape) == 2:   # a linear layer
                    wt = graph.add_const(f"{node.inputs[1]}_t", np.ascontiguousarray(w.data.T).astype(np.int8))
                    node.op, node.inputs = "MatMulW", [as_type(node.inputs[0], np.int8), wt]
                elif all(t in (np.int8, np.uint8) for t in small):   # int8 x int8 -> int32: MatMulInteger
                    node.op, node.inputs = "MatMulInteger", [as_type(i, t) for i, t in zip(node.inputs, small)]
                else:
                    node.inputs = [as_type(i, np.int32) for i in node.inputs]
                retype(node, np.int32, lo, hi)
        elif dialect_op(node) and r and r[0]:
            node.attrs.pop("_dtype", None)   # the levels' type (ops/deeploy.py out_dtype)
            args = {i: np.zeros(graph.tensors[i].shape, graph.tensors[i].dtype) for i in node.inputs
                    if i and not graph.tensors[i].is_const}
            outs = run_graph(Graph("one", graph.tensors, [node], list(args), list(node.outputs)), args)
            for o in node.outputs:   # the op's own type rule, on its integer input
                dt = graph.tensors[o].dtype = np.dtype(outs[o].dtype)
                if dt.kind in "iu":
                    rng[o] = (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
        else:
            node.inputs = [as_type(i, np.float32) if i and i in rng and graph.tensors[i].dtype.kind in "iu"
                           and node.op not in ("Cast",) else i for i in node.inputs]
        nodes.append(node)
    graph.nodes = _fold_transpose(graph, _fold_bias(graph, nodes))
    return graph


def _fold_transpose(graph: Graph, nodes: list[Node]) -> list[Node]:
    """Transpose of the last two axes read only by MatMulInteger's B (attention's K^T) -> B read
    transposed in place (MatMulInteger's internal `tb`): the cache is not copied."""
    uses = Graph("g", graph.tensors, nodes, graph.inputs, graph.outputs).uses()
    drop = set()
    for mm in nodes:
        tr = uses.producer(mm.inputs[1]) if mm.op == "MatMulInteger" and len(mm.inputs) == 2 else None
        if tr is None or tr.op != "Transpose" or mm.inputs[1] in graph.outputs or len(uses.consumers(mm.inputs[1])) != 1:
            continue
        rank = len(graph.tensors[tr.inputs[0]].shape)
        if rank < 2 or list(tr.attr("perm", [])) != list(range(rank - 2)) + [rank - 1, rank - 2]:
            continue
        mm.inputs[1], mm.attrs["tb"] = tr.inputs[0], 1
        drop.add(id(tr))
    return [n for n in nodes if id(n) not in drop]


def _fold_bias(graph: Graph, nodes: list[Node]) -> list[Node]:
    """MatMulW -> Add of a constant [N] (a linear layer's bias) -> one MatMulW with the bias."""
    uses = Graph("g", graph.tensors, nodes, graph.inputs, graph.outputs).uses()
    drop = set()
    for mm in nodes:
        if mm.op != "MatMulW" or len(mm.inputs) > 2 or mm.outputs[0] in graph.outputs:
            continue
        users = uses.consumers(mm.outputs[0])
        add = users[0] if len(users) == 1 else None
        if add is None or add.op != "Add" or graph.tensors[add.outputs[0]].dtype != np.int32:
            continue
        other = next(i for i in add.inputs if i != mm.outputs[0])
        b, n = graph.tensors[other], graph.tensors[mm.inputs[1]].shape[0]
        if add.inputs.count(mm.outputs[0]) != 1 or not b.is_const or b.size != n or b.shape[-1:] != (n,) \
                or graph.tensors[add.outputs[0]].shape != graph.tensors[mm.outputs[0]].shape:
            continue
        mm.inputs.append(graph.add_const(f"{other}_bias", b.data.reshape(n).astype(np.int32)))
        mm.outputs = list(add.outputs)
        drop.add(id(add))
    return [n for n in nodes if id(n) not in drop]
