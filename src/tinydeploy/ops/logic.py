"""Comparisons (Equal, Less, …), boolean logic (And, Or, Xor, Not) and bitwise ops (BitwiseAnd …,
BitShift), with numpy broadcasting; booleans are stored as uint8 0/1 (runtime/kernels/logic.h)."""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from . import nd
from .registry import register

COMPARE = {"Equal": ("equal", np.equal), "Less": ("less", np.less), "LessOrEqual": ("less_equal", np.less_equal),
           "Greater": ("greater", np.greater), "GreaterOrEqual": ("greater_equal", np.greater_equal)}
LOGIC = {"And": ("and", np.logical_and), "Or": ("or", np.logical_or), "Xor": ("xor", np.logical_xor)}
BITWISE = {"BitwiseAnd": ("bitwise_and", np.bitwise_and), "BitwiseOr": ("bitwise_or", np.bitwise_or),
           "BitwiseXor": ("bitwise_xor", np.bitwise_xor)}


def broadcast_call(ctx, graph, node, fn: str, ins: list[str], out: str) -> str:
    """`fn(in0, in1, …, out, rank, dims, strides…)` over out's shape (strides from broadcasting)."""
    oshape = graph.tensors[out].shape
    dims, ss = nd.collapse(oshape, *[nd.bcast_strides(graph.tensors[i].shape, oshape) for i in ins])
    if graph.tensors[out].size == 0:
        return ""
    arr = ctx.array(node.name + "_nd", np.array(dims + [s for st in ss for s in st], np.int32))
    r = len(dims)
    strides = ", ".join(f"{arr} + {r * (k + 1)}" for k in range(len(ins)))
    ptrs = ", ".join(ctx.ptr(i) for i in ins)
    return f"{fn}({ptrs}, {ctx.ptr(out)}, {r}, {arr}, {strides});"


def _suffix(node, graph, name, allowed: str):
    dt = np.dtype(graph.tensors[name].dtype)
    sfx = nd.suffix(dt)
    if dt.kind not in allowed or sfx not in {"f32", "f64", "s8", "u8", "s16", "u16", "s32", "u32", "s64",
                                             "u64", "b8"}:
        raise TinydeployError(f"node {node.name} ({node.op}): type {dt.name} is not supported")
    return "u8" if sfx == "b8" else sfx


def _binary(op, cname, fn, kinds, logical=False):
    def emit(node, graph, ctx):
        sfx = "b8" if logical else _suffix(node, graph, node.inputs[0], kinds)
        return broadcast_call(ctx, graph, node, f"td_{cname}_{sfx}", node.inputs[:2], node.outputs[0])

    def golden(node, graph, args):
        return [fn(args[0], args[1])]

    register(op, emit=emit, header="logic.h")(golden)


for _op, (_c, _fn) in COMPARE.items():
    _binary(_op, _c, _fn, "fiub")
for _op, (_c, _fn) in LOGIC.items():
    _binary(_op, _c, _fn, "b", logical=True)
for _op, (_c, _fn) in BITWISE.items():
    _binary(_op, _c, _fn, "iu")


def _emit_not(node, graph, ctx):
    return f"td_not_b8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {graph.tensors[node.inputs[0]].size});"


@register("Not", emit=_emit_not, inplace=True, header="logic.h")
def not_(node, graph, args):
    return [np.logical_not(args[0])]


def _emit_bitwise_not(node, graph, ctx):
    sfx = _suffix(node, graph, node.inputs[0], "iu")
    return (f"td_bitwise_not_{sfx}({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
            f"{graph.tensors[node.inputs[0]].size});")


@register("BitwiseNot", emit=_emit_bitwise_not, inplace=True, header="logic.h")
def bitwise_not(node, graph, args):
    return [np.invert(args[0])]


def _emit_shift(node, graph, ctx):
    sfx = _suffix(node, graph, node.inputs[0], "iu")
    fn = "td_shl_" if node.attr("direction") == "LEFT" else "td_shr_"
    return broadcast_call(ctx, graph, node, fn + sfx, node.inputs[:2], node.outputs[0])


@register("BitShift", emit=_emit_shift, header="logic.h")
def bitshift(node, graph, args):
    """ONNX semantics: counts outside [0, width) give 0 (or -1 for a negative value shifted right);
    left shifts of signed values shift the two's complement bits."""
    a, b = np.broadcast_arrays(*args)
    bits = 8 * a.dtype.itemsize
    u = np.dtype(f"u{a.dtype.itemsize}")
    valid = (b >= 0) & (b < bits)
    bb = np.where(valid, b, 0).astype(u)
    if node.attr("direction") == "LEFT":
        y = np.left_shift(a.view(u) if a.dtype.kind == "i" else a, bb).astype(u).view(a.dtype)
        return [np.where(valid, y, 0).astype(a.dtype)]
    y = np.right_shift(a, bb.astype(a.dtype))
    fill = np.where(a < 0, -1, 0) if a.dtype.kind == "i" else 0
    return [np.where(valid, y, fill).astype(a.dtype)]
