"""CumSum and CumProd (runtime/kernels/cumsum.h): inclusive/exclusive, forward/reverse, along a
constant axis, for float32/64 and 32/64-bit integers. Not in place: y[k] is written before x[k] is
read in exclusive mode."""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from . import nd
from .registry import prod, register
from .shape import _const


def _geom(node, graph, shape, args=None):
    axis = int(_const(node, graph, args, 1, "axis").reshape(())) % max(len(shape), 1)
    return (prod(shape[:axis]), shape[axis], prod(shape[axis + 1:]),
            axis)


def _emit(node, graph, ctx):
    x = node.inputs[0]
    sfx = nd.suffix(graph.tensors[x].dtype)
    if sfx not in ("f32", "f64", "s32", "u32", "s64", "u64"):
        raise TinydeployError(f"node {node.name} ({node.op}): type {sfx} is not supported")
    outer, n, inner, _ = _geom(node, graph, graph.tensors[x].shape)
    return (f"td_cumsum_{sfx}({ctx.ptr(x)}, {ctx.ptr(node.outputs[0])}, {outer}, {n}, {inner}, "
            f"{int(node.attr('exclusive', 0))}, {int(node.attr('reverse', 0))}, {int(node.op == 'CumProd')});")


def cumulate(node, graph, args):
    x = np.asarray(args[0])
    *_, axis = _geom(node, graph, x.shape, args)
    v = np.flip(x, axis) if node.attr("reverse", 0) else x
    with np.errstate(all="ignore"):
        y = (np.cumprod if node.op == "CumProd" else np.cumsum)(v, axis=axis, dtype=x.dtype)
    if node.attr("exclusive", 0):   # the running value before each element: shift by one
        head = np.full_like(np.take(y, [0], axis), 1 if node.op == "CumProd" else 0)
        y = np.concatenate([head, np.take(y, range(x.shape[axis] - 1), axis)], axis)
    return [np.flip(y, axis) if node.attr("reverse", 0) else y]


register("CumSum", emit=_emit, header="cumsum.h")(cumulate)
register("CumProd", emit=_emit, header="cumsum.h")(cumulate)
