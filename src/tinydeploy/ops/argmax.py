"""ArgMax, ArgMin (keepdims, select_last_index) and Hardmax (runtime/kernels/argmax.h)."""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from . import nd
from .registry import prod, register


def _geom(shape, axis):
    axis %= max(len(shape), 1)
    return prod(shape[:axis]), shape[axis], prod(shape[axis + 1:]), axis


def _sfx(node, graph, name):
    sfx = nd.suffix(graph.tensors[name].dtype)
    if sfx not in {"f32", "f64", "s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64"}:
        raise TinydeployError(f"node {node.name} ({node.op}): type {sfx} is not supported")
    return sfx


def _emit_arg(node, graph, ctx):
    x = node.inputs[0]
    outer, n, inner, _ = _geom(graph.tensors[x].shape, node.attr("axis", 0))
    return (f"td_arg_{_sfx(node, graph, x)}({ctx.ptr(x)}, {ctx.ptr(node.outputs[0])}, {outer}, {n}, {inner}, "
            f"{int(node.op == 'ArgMax')}, {int(node.attr('select_last_index', 0))});")


def _arg(node, graph, args):
    x = np.asarray(args[0])
    axis = node.attr("axis", 0) % x.ndim
    v = -x if node.op == "ArgMin" and x.dtype.kind != "u" else x
    if node.op == "ArgMin" and x.dtype.kind == "u":
        v = np.iinfo(x.dtype).max - x
    if node.attr("select_last_index", 0):
        flipped = np.flip(v, axis)
        idx = x.shape[axis] - 1 - np.argmax(flipped, axis=axis)
    else:
        idx = np.argmax(v, axis=axis)
    idx = idx.astype(np.int64)
    return [np.expand_dims(idx, axis) if node.attr("keepdims", 1) else idx]


register("ArgMax", emit=_emit_arg, header="argmax.h")(_arg)
register("ArgMin", emit=_emit_arg, header="argmax.h")(_arg)


def _hardmax_geom(node, shape):
    axis = node.attr("axis", -1 if node.attr("_opset", 13) >= 13 else 1) % max(len(shape), 1)
    if node.attr("_opset", 13) < 13:   # older opsets: the input as a 2-D matrix [prod(:axis), prod(axis:)]
        return prod(shape[:axis]), prod(shape[axis:]), 1
    return _geom(shape, axis)[:3]


def _emit_hardmax(node, graph, ctx):
    x = node.inputs[0]
    outer, n, inner = _hardmax_geom(node, graph.tensors[x].shape)
    return f"td_hardmax_{_sfx(node, graph, x)}({ctx.ptr(x)}, {ctx.ptr(node.outputs[0])}, {outer}, {n}, {inner});"


@register("Hardmax", emit=_emit_hardmax, header="argmax.h")
def hardmax(node, graph, args):
    x = np.asarray(args[0])
    outer, n, inner = _hardmax_geom(node, x.shape)
    v = x.reshape(outer, n, inner)
    first = np.argmax(v, axis=1)
    y = (np.arange(n)[None, :, None] == first[:, None, :]).astype(x.dtype)
    return [y.reshape(x.shape)]
