"""ReduceSum / Mean / Max / Min / Prod / SumSquare / L1 / L2 / LogSum / LogSumExp (float), and the
integer QReduce for Sum, Mean, Max and Min.

Axes come from the attribute (older opsets) or the constant second input (ReduceSum ≥ 13, the rest
≥ 18); keepdims and noop_with_empty_axes as in ONNX. Integer forms (runtime/kernels/reduce.h):
    mean / sum: y = clamp(requant(Σ (x - zx), M, S) + zy), M·2^-S = sx / (sy·n) (mean) or sx / sy
    max / min:  y = clamp(requant(x* - zx, M, S) + zy),     M·2^-S = sx / sy
one rounding each, so 0–1 LSB from onnxruntime.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .quant import act_range, quantize_multiplier, requant
from .registry import prod, register

OPS = {"ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3, "ReduceProd": 4, "ReduceSumSquare": 5,
       "ReduceL1": 6, "ReduceL2": 7, "ReduceLogSum": 8, "ReduceLogSumExp": 9}
INTEGER = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin")


def axes_of(node, graph, rank: int) -> tuple[int, ...]:
    """The reduced axes (sorted, non-negative); () means none (noop)."""
    if node.attr("axes") is not None:
        axes = list(node.attr("axes"))
    elif len(node.inputs) > 1 and node.inputs[1]:
        v = graph.const(node.inputs[1])
        if v is None:
            raise TinydeployError(f"node {node.name} ({node.op}): axes must be a constant")
        axes = [int(a) for a in np.asarray(v).reshape(-1)]
    else:
        axes = []
    if not axes:
        return () if node.attr("noop_with_empty_axes", 0) else tuple(range(rank))
    if any(not -rank <= a < rank for a in axes):
        raise TinydeployError(f"node {node.name} ({node.op}): axes {axes} out of range for rank {rank}")
    return tuple(sorted({a % rank for a in axes}))


def _out_shape(shape, axes, keep):
    return tuple((1 if i in axes else d) for i, d in enumerate(shape) if keep or i not in axes)


def plan(shape, axes):
    """(kept dims[3], kept strides[3], reduced dims[3], reduced strides[3]) of a contiguous input."""
    st, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        st[d], acc = acc, acc * shape[d]
    groups: list[list] = []          # [reduced?, size, stride] with adjacent same-kind dims merged
    for d in range(len(shape)):
        if shape[d] == 1:
            continue
        red = d in axes
        if groups and groups[-1][0] == red:
            groups[-1][1] *= shape[d]
            groups[-1][2] = st[d]
        else:
            groups.append([red, shape[d], st[d]])
    kept = [(n, s) for r, n, s in groups if not r]
    red = [(n, s) for r, n, s in groups if r]
    if len(kept) > 3 or len(red) > 3:
        raise TinydeployError(f"reduction over axes {list(axes)} of shape {list(shape)} needs more than 3 loop levels")
    kept = [(1, 0)] * (3 - len(kept)) + kept
    red = [(1, 0)] * (3 - len(red)) + red
    return [n for n, _ in kept], [s for _, s in kept], [n for n, _ in red], [s for _, s in red]


def _geo(shape, axes) -> str:
    kd, ks, rd, rs = plan(shape, axes)
    return ", ".join(str(v) for v in kd + ks + rd + rs)


# ---- float ----------------------------------------------------------------------------------------
def _emit(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    if x.dtype != np.float32:
        raise TinydeployError(f"node {node.name} ({node.op}): only float32 has a C kernel")
    axes = axes_of(node, graph, len(x.shape))
    if not axes:
        return f"for (int i = 0; i < {x.size}; i++) {ctx.ptr(node.outputs[0])}[i] = {ctx.ptr(node.inputs[0])}[i];"
    ctx.headers.add("eltwise.h")
    return f"td_reduce_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {_geo(x.shape, axes)}, {OPS[node.op]});"


def _identity(dtype, is_max: bool):
    """The identity of max (is_max) or min over `dtype`: what ReduceMax / ReduceMin give for an empty set."""
    if dtype.kind == "f":
        return -np.inf if is_max else np.inf
    if dtype.kind == "b":
        return not is_max
    info = np.iinfo(dtype)
    return info.min if is_max else info.max


def _golden(node, graph, args):
    x = args[0]
    axes = axes_of(node, graph, x.ndim)
    keep = bool(node.attr("keepdims", 1))
    if not axes:
        return [x.copy()]
    f32 = x.dtype == np.float32
    xf = x.astype(np.float32) if f32 else x
    kw = dict(axis=axes, keepdims=True)
    op = node.op
    if op in ("ReduceMax", "ReduceMin"):   # an empty set gives the identity: -inf / +inf, dtype min / max
        y = (np.max if op == "ReduceMax" else np.min)(xf, initial=_identity(xf.dtype, op == "ReduceMax"), **kw)
    elif op == "ReduceProd":
        y = np.prod(xf, **kw)
    elif op == "ReduceLogSumExp":
        mx = np.max(xf, initial=_identity(xf.dtype, True), **kw)
        y = mx + np.log(np.sum(np.exp(xf - mx), **kw))
    else:
        v = xf * xf if op in ("ReduceSumSquare", "ReduceL2") else (np.abs(xf) if op == "ReduceL1" else xf)
        y = np.sum(v, **kw)
        if op == "ReduceMean":
            y = y / (np.float32(prod([x.shape[a] for a in axes])) if f32 else prod([x.shape[a] for a in axes]))
        elif op == "ReduceL2":
            y = np.sqrt(y)
        elif op == "ReduceLogSum":
            y = np.log(y)
    return [np.asarray(y).astype(x.dtype).reshape(_out_shape(x.shape, axes, keep))]


for _op in OPS:
    register(_op, emit=_emit, header="reduce.h", macs=lambda n, g: g.tensors[n.inputs[0]].size,
             lower=(lambda m, g: lower_reduce(m, g)) if _op in INTEGER else None)(_golden)


# ---- int8 -----------------------------------------------------------------------------------------
def lower_reduce(m, graph):
    x = m.ins[0]
    if x is None or x.q.per_channel or graph.tensors[x.name].dtype != np.int8:
        return None
    shape = graph.tensors[x.name].shape
    axes = axes_of(m.node, graph, len(shape))
    n = prod([shape[a] for a in axes])
    if not axes or n == 0 or n * 256 > 2**31 - 1:   # an empty set stays float
        return None
    sx, sy = np.float64(x.q.scale[0]), np.float64(m.out_q.scale[0])
    try:
        mm, ss = quantize_multiplier(sx / (sy * n) if m.node.op == "ReduceMean" else sx / sy)
        plan(shape, axes)
    except TinydeployError:
        return None
    lo, hi = act_range(m)
    attrs = dict(axes=list(axes), keepdims=int(m.node.attr("keepdims", 1)), op=OPS[m.node.op],
                 zx=int(x.q.zero_point[0]), m=int(mm[0]), s=int(ss[0]), zy=int(m.out_q.zero_point[0]), lo=lo, hi=hi)
    return [Node("QReduce", m.node.name, [x.name], [m.out], attrs)]


def _emit_q(node, graph, ctx) -> str:
    a = node.attrs
    ctx.headers.add("eltwise.h")
    return (f"td_reduce_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
            f"{_geo(graph.tensors[node.inputs[0]].shape, tuple(a['axes']))}, {a['op']}, "
            f"{a['zx']}, {a['m']}, {a['s']}, {a['zy']}, {a['lo']}, {a['hi']});")


@register("QReduce", header="reduce.h", macs=lambda n, g: g.tensors[n.inputs[0]].size, emit=_emit_q)
def qreduce(node, graph, args):
    a = node.attrs
    x = args[0].astype(np.int64)
    axes = tuple(a["axes"])
    if a["op"] in (OPS["ReduceMax"], OPS["ReduceMin"]):
        acc = (x.max if a["op"] == OPS["ReduceMax"] else x.min)(axis=axes, keepdims=True) - a["zx"]
    else:
        acc = (x - a["zx"]).sum(axis=axes, keepdims=True)
    y = np.clip(requant(acc, a["m"], a["s"]) + a["zy"], a["lo"], a["hi"]).astype(np.int8)
    return [y.reshape(_out_shape(x.shape, axes, a["keepdims"]))]
