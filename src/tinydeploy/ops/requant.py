"""QRequant and the integer (QDQ) lowering of data-movement ops.

DequantizeLinear → data movement → QuantizeLinear moves int8 values unchanged when input and
output share scale and zero point: the op then runs on the int8 tensor itself (ops are
dtype-generic). Otherwise the op is followed (or, when it enlarges the tensor, preceded) by a
QRequant, y = clamp(requant((x - zx) · sx/sy) + zy), with the usual fixed-point multiplier: at
most 1 LSB from ONNX Runtime's float dequantize → quantize (which rounds half to even).
Concat and Where requantize each input to the output's quantization first (QLinearConcat).
"""
from __future__ import annotations

import numpy as np

from ..ir import Node, Tensor
from .quant import act_range, quantize_multiplier, requant
from .quantize_linear import quantize
from .registry import prod, register
from .tiles import elementwise


def _emit(node, graph, ctx):
    a = node.attrs
    return (f"td_requant_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
            f"{graph.tensors[node.inputs[0]].size}, {a['x_zp']}, {a['m']}, {a['s']}, {a['y_zp']}, "
            f"{a['lo']}, {a['hi']});")


@register("QRequant", emit=_emit, inplace=True, header="requant.h", tiling=elementwise)
def qrequant(node, graph, args):
    a = node.attrs
    y = requant(np.asarray(args[0]).astype(np.int64) - a["x_zp"], a["m"], a["s"]) + a["y_zp"]
    return [np.clip(y, a["lo"], a["hi"]).astype(np.int8)]


def _same(q1, q2) -> bool:
    return (np.float32(q1.scale[0]) == np.float32(q2.scale[0])
            and int(q1.zero_point[0]) == int(q2.zero_point[0]))


def requant_node(m, graph, src, src_q, shape, after: str | None = None) -> tuple[Node, str]:
    """QRequant from int8 `src` (quant src_q) into m.out's quantization; returns (node, output name).
    `after` names the output to write (default: a fresh int8 tensor of `shape`)."""
    mult, shift = quantize_multiplier(np.float64(src_q.scale[0]) / np.float64(m.out_q.scale[0]),
                                      f"node {m.node.name}")
    out = after
    if out is None:
        out = graph.unique(f"{m.node.name}_rq_{src}")
        graph.tensors[out] = Tensor(out, tuple(shape), np.dtype(np.int8), quant=m.out_q)
    lo, hi = act_range(m)
    attrs = dict(x_zp=int(src_q.zero_point[0]), m=int(mult[0]), s=int(shift[0]), y_zp=int(m.out_q.zero_point[0]),
                 lo=lo, hi=hi)
    return Node("QRequant", graph.unique(f"{m.node.name}_requant"), [src], [out], attrs), out


def _usable(qin) -> bool:
    return qin is not None and not qin.q.per_channel


def lower_move(m, graph, extra_inputs=None):
    """Data movement on int8 input 0; the other inputs are parameters (constants or indices)."""
    x = m.ins[0]
    if not _usable(x) or any(q is not None for q in m.ins[1:]):
        return None
    nodes = _lower_move(m, graph, x, extra_inputs)
    if x.const is not None and all(graph.tensors[i].is_const for i in m.node.inputs[1:] if i):
        return _fold(m, graph, nodes)
    return nodes


def _fold(m, graph, nodes):
    """Moving constant int8 data (a weight): do it now; the result is a constant int8 tensor that a
    consumer (QMatMul, QConv) can take as its weight. A graph output gets a copy node instead."""
    from ..golden import run_graph
    from ..ir import Graph
    value = run_graph(Graph("fold", graph.tensors, nodes, [], [m.out]), {})[m.out]
    if m.out in graph.outputs:
        src = graph.add_const(f"{m.node.name}_folded", value, m.out_q)
        return [Node("Identity", m.node.name, [src], [m.out])]
    t = graph.tensors[m.out]
    t.data, t.shape, t.quant = value, tuple(value.shape), m.out_q
    return []


def _lower_move(m, graph, x, extra_inputs):
    rest = list(m.node.inputs[1:]) if extra_inputs is None else extra_inputs
    attrs = dict(m.node.attrs)
    if _same(x.q, m.out_q) and act_range(m) == (-128, 127):
        return [Node(m.node.op, m.node.name, [x.name] + rest, [m.out], attrs)]
    fshape = graph.tensors[m.node.outputs[0]].shape
    xshape = graph.tensors[x.name].shape
    if prod(fshape) > prod(xshape):   # requantize the smaller tensor
        rq, tmp = requant_node(m, graph, x.name, x.q, xshape)
        return [rq, Node(m.node.op, m.node.name, [tmp] + rest, [m.out], attrs)]
    tmp = graph.unique(f"{m.node.name}_moved")
    graph.tensors[tmp] = Tensor(tmp, tuple(fshape), np.dtype(np.int8), quant=None)
    rq, _ = requant_node(m, graph, tmp, x.q, fshape, after=m.out)
    return [Node(m.node.op, m.node.name, [x.name] + rest, [tmp], attrs), rq]


def lower_gather(m, graph):
    """Gather reads from int8 data that may be a constant table (embeddings): same as any move."""
    return lower_move(m, graph)


def _to_out_domain(m, graph, k, nodes):
    """Input k of m.node as an int8 tensor in m.out's quantization (requantized or quantized const)."""
    qin, name = m.ins[k], m.node.inputs[k]
    if qin is None:
        v = graph.const(name)
        if v is None or np.asarray(v).dtype.kind != "f":
            return None
        s, z = np.float32(m.out_q.scale[0]), int(m.out_q.zero_point[0])
        lo, hi = act_range(m)
        q = quantize(v, s, z, lo, hi).astype(np.int8)
        return graph.add_const(f"{m.node.name}_q{k}", q, m.out_q)
    if qin.q.per_channel:
        return None
    if _same(qin.q, m.out_q) and act_range(m) == (-128, 127):
        return qin.name
    rq, out = requant_node(m, graph, qin.name, qin.q, graph.tensors[qin.name].shape)
    nodes.append(rq)
    return out


def lower_concat(m, graph):
    nodes: list[Node] = []
    ins = []
    for k, name in enumerate(m.node.inputs):
        if not name:
            continue
        t = _to_out_domain(m, graph, k, nodes)
        if t is None:
            return None
        ins.append(t)
    return nodes + [Node("Concat", m.node.name, ins, [m.out], dict(m.node.attrs))]


def lower_where(m, graph):
    if m.ins[0] is not None:
        return None
    nodes: list[Node] = []
    x = _to_out_domain(m, graph, 1, nodes)
    y = _to_out_domain(m, graph, 2, nodes)
    if x is None or y is None:
        return None
    return nodes + [Node("Where", m.node.name, [m.node.inputs[0], x, y], [m.out], dict(m.node.attrs))]


def lower_pad(m, graph):
    """Requantize first (if needed), then pad in the output's domain, so padded elements are
    exactly QuantizeLinear(constant_value)."""
    from .indexing import pad_params
    x = m.ins[0]
    if not _usable(x) or any(q is not None for q in m.ins[1:2] + m.ins[3:]):
        return None
    node = m.node
    _, _, mode, value = pad_params(node, graph, len(graph.tensors[x.name].shape))
    if len(m.ins) > 2 and m.ins[2] is not None:        # quantized constant value
        c = m.ins[2]
        if c.const is None:
            return None
        value = (float(c.const.reshape(-1)[0]) - float(c.q.zero_point[0])) * float(c.q.scale[0])
    s, z = np.float32(m.out_q.scale[0]), int(m.out_q.zero_point[0])
    lo, hi = act_range(m)
    qv = int(quantize(0.0 if value is None else value, s, z, lo, hi))
    nodes: list[Node] = []
    src = x.name
    if not (_same(x.q, m.out_q) and (lo, hi) == (-128, 127)):
        rq, src = requant_node(m, graph, x.name, x.q, graph.tensors[x.name].shape)
        nodes.append(rq)
    attrs = dict(node.attrs)
    ins = [src] + list(node.inputs[1:])
    if node.attr("_opset", 13) < 11:
        attrs["value"] = qv
    else:
        while len(ins) < 3:
            ins.append("")
        ins[2] = graph.add_const(f"{node.name}_qvalue", np.array(qv, np.int8))
    return nodes + [Node("Pad", node.name, ins, [m.out], attrs)]

