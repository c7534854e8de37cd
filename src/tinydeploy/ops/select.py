"""Index-driven data movement and masks: GatherElements, GatherND, ScatterElements (and the old
Scatter), ScatterND, OneHot, TopK, ReverseSequence (runtime/kernels/select.h), and Trilu, EyeLike, Compress built on
the shape kernels (Where with a constant mask, a copy from flash, a Gather with constant indices).

Shape-defining inputs (TopK's k, OneHot's depth, Trilu's k, Compress's condition) must be constants.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from . import nd
from .registry import prod, register
from .shape import _const

REDUCTIONS = {"none": 0, "add": 1, "mul": 2, "max": 3, "min": 4}


def _isfx(node, graph, name):
    dt = np.dtype(graph.tensors[name].dtype)
    if dt not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise TinydeployError(f"node {node.name} ({node.op}): indices must be int32 or int64, not {dt.name}")
    return "i32" if dt == np.int32 else "i64"


def _vsfx(node, graph, name):
    sfx = nd.suffix(graph.tensors[name].dtype)
    if sfx not in {"f32", "f64", "s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64", "b8"}:
        raise TinydeployError(f"node {node.name} ({node.op}): type {sfx} is not supported")
    return "u8" if sfx == "b8" else sfx


def _norm(idx, n):
    idx = np.asarray(idx).astype(np.int64)
    return np.where(idx < 0, idx + n, idx)


# ---- GatherElements ----------------------------------------------------------------------------
def _emit_gather_elements(node, graph, ctx):
    x, idx, y = node.inputs[0], node.inputs[1], node.outputs[0]
    shape, ishape = graph.tensors[x].shape, graph.tensors[idx].shape
    axis = node.attr("axis", 0) % len(shape)
    if graph.tensors[y].size == 0:
        return ";"
    xs = nd.strides(shape)
    dims = list(ishape) or [1]
    base = [0 if d == axis else xs[d] for d in range(len(dims))]
    arr = ctx.array(node.name + "_nd", np.array(dims + base, np.int32))
    r = len(dims)
    return (f"td_gather_elements_{_isfx(node, graph, idx)}((const uint8_t *){ctx.ptr(x)}, {ctx.ptr(idx)}, "
            f"(uint8_t *){ctx.ptr(y)}, {nd.esize(graph, x)}, {r}, {arr}, {arr} + {r}, {xs[axis]}, {shape[axis]});")


@register("GatherElements", emit=_emit_gather_elements, header="select.h")
def gather_elements(node, graph, args):
    x = np.asarray(args[0])
    axis = node.attr("axis", 0) % x.ndim
    return [np.take_along_axis(x, _norm(args[1], x.shape[axis]), axis=axis)]


# ---- GatherND ------------------------------------------------------------------------------------
def _nd_geom(xshape, ishape, b):
    K = ishape[-1]
    nb = prod(xshape[:b])
    nm = prod(ishape[b:-1])
    slice_ = prod(xshape[b + K:])
    xb = prod(xshape[b:])
    return K, nb, nm, slice_, xb


def _emit_gather_nd(node, graph, ctx):
    x, idx, y = node.inputs[0], node.inputs[1], node.outputs[0]
    xshape, ishape = graph.tensors[x].shape, graph.tensors[idx].shape
    b = node.attr("batch_dims", 0)
    K, nb, nm, slice_, xb = _nd_geom(xshape, ishape, b)
    st = nd.strides(xshape)
    arr = ctx.array(node.name + "_nd", np.array(list(xshape[b:b + K]) + st[b:b + K] + [0], np.int32))
    return (f"td_gather_nd_{_isfx(node, graph, idx)}((const uint8_t *){ctx.ptr(x)}, {ctx.ptr(idx)}, "
            f"(uint8_t *){ctx.ptr(y)}, {nd.esize(graph, x)}, {nb}, {xb}, {nm}, {K}, {arr}, {arr} + {K}, {slice_});")


@register("GatherND", emit=_emit_gather_nd, header="select.h")
def gather_nd(node, graph, args):
    x, idx = np.asarray(args[0]), np.asarray(args[1]).astype(np.int64)
    b = node.attr("batch_dims", 0)
    K = idx.shape[-1]
    xb = x.reshape((-1,) + x.shape[b:])
    ib = idx.reshape((xb.shape[0], -1, K))
    dims = np.array(x.shape[b:b + K])
    ib = np.where(ib < 0, ib + dims, ib)
    out = np.stack([np.stack([xb[n][tuple(t)] for t in ib[n]]) for n in range(xb.shape[0])])
    return [out.reshape(idx.shape[:-1] + x.shape[b + K:])]


# ---- ScatterElements / Scatter / ScatterND -------------------------------------------------------
def _red(node):
    red = node.attr("reduction", "none")
    if red not in REDUCTIONS:
        raise TinydeployError(f"node {node.name} ({node.op}): reduction {red} is not supported")
    return REDUCTIONS[red]


def _copy_in(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    n = graph.tensors[x].size
    return nd.copy_call(ctx, ctx.ptr(x), ctx.ptr(y), nd.esize(graph, x), [n], [1], [1])


def _emit_scatter_elements(node, graph, ctx):
    x, idx, upd, y = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
    shape, ishape = graph.tensors[x].shape, graph.tensors[idx].shape
    axis = node.attr("axis", 0) % len(shape)
    ys = nd.strides(shape)
    dims = list(ishape) or [1]
    base = [0 if d == axis else ys[d] for d in range(len(dims))]
    arr = ctx.array(node.name + "_nd", np.array(dims + base, np.int32))
    r = len(dims)
    call = (f"td_scatter_elements_{_vsfx(node, graph, x)}_{_isfx(node, graph, idx)}({ctx.ptr(y)}, {ctx.ptr(idx)}, "
            f"{ctx.ptr(upd)}, {r}, {arr}, {arr} + {r}, {ys[axis]}, {shape[axis]}, {_red(node)});")
    return _copy_in(node, graph, ctx) + "\n" + call if graph.tensors[idx].size else _copy_in(node, graph, ctx)


_NP_RED = {1: np.add, 2: np.multiply, 3: np.maximum, 4: np.minimum}


def _scatter_elements(node, graph, args):
    x, idx, upd = np.asarray(args[0]), np.asarray(args[1]), np.asarray(args[2])
    axis = node.attr("axis", 0) % x.ndim
    y = x.copy()
    red = _red(node)
    idx = _norm(idx, x.shape[axis])
    for pos in np.ndindex(idx.shape):   # in order, as the C kernel (duplicates accumulate)
        k = idx[pos]
        if not 0 <= k < x.shape[axis]:
            continue
        t = pos[:axis] + (k,) + pos[axis + 1:]
        y[t] = upd[pos] if red == 0 else _NP_RED[red](y[t], upd[pos])
    return [y]


register("ScatterElements", emit=_emit_scatter_elements, header="select.h")(_scatter_elements)
register("Scatter", emit=_emit_scatter_elements, header="select.h")(_scatter_elements)


def _emit_scatter_nd(node, graph, ctx):
    x, idx, upd = node.inputs[0], node.inputs[1], node.inputs[2]
    xshape, ishape = graph.tensors[x].shape, graph.tensors[idx].shape
    K, _, nm, slice_, _ = _nd_geom(xshape, ishape, 0)
    arr = ctx.array(node.name + "_nd", np.array(list(xshape[:K]) + nd.strides(xshape)[:K] + [0], np.int32))
    call = (f"td_scatter_nd_{_vsfx(node, graph, x)}_{_isfx(node, graph, idx)}({ctx.ptr(node.outputs[0])}, "
            f"{ctx.ptr(idx)}, {ctx.ptr(upd)}, {nm}, {K}, {arr}, {arr} + {K}, {slice_}, {_red(node)});")
    return _copy_in(node, graph, ctx) + "\n" + call


@register("ScatterND", emit=_emit_scatter_nd, header="select.h")
def scatter_nd(node, graph, args):
    x, idx, upd = np.asarray(args[0]), np.asarray(args[1]).astype(np.int64), np.asarray(args[2])
    y = x.copy()
    red = _red(node)
    K = idx.shape[-1]
    flat_i = idx.reshape(-1, K)
    flat_u = upd.reshape((flat_i.shape[0],) + x.shape[K:])
    for t, u in zip(flat_i, flat_u):
        t = tuple(int(v) + (x.shape[j] if v < 0 else 0) for j, v in enumerate(t))
        y[t] = u if red == 0 else _NP_RED[red](y[t], u)
    return [y]


# ---- OneHot ------------------------------------------------------------------------------------
def _onehot_geom(node, ishape, depth):
    axis = node.attr("axis", -1)
    axis = axis + len(ishape) + 1 if axis < 0 else axis
    outer = prod(ishape[:axis])
    inner = prod(ishape[axis:])
    return axis, outer, inner


def _emit_onehot(node, graph, ctx):
    idx, y = node.inputs[0], node.outputs[0]
    depth = int(_const(node, graph, None, 1, "depth").reshape(()))
    vals = _const(node, graph, None, 2, "values").reshape(-1)
    dt = np.dtype(graph.tensors[idx].dtype)
    isfx = {np.dtype(np.int32): "i32", np.dtype(np.int64): "i64", np.dtype(np.float32): "f32"}.get(dt)
    if isfx is None:
        raise TinydeployError(f"node {node.name} (OneHot): indices of type {dt.name} are not supported")
    _, outer, inner = _onehot_geom(node, graph.tensors[idx].shape, depth)
    v = ctx.array(node.name + "_values", vals)
    es = vals.dtype.itemsize
    return (f"td_onehot_{isfx}({ctx.ptr(idx)}, (uint8_t *){ctx.ptr(y)}, {es}, {outer}, {depth}, {inner}, "
            f"(const uint8_t *){v}, (const uint8_t *){v} + {es});")


@register("OneHot", emit=_emit_onehot, header="select.h")
def onehot(node, graph, args):
    idx, vals = np.asarray(args[0]), np.asarray(args[2]).reshape(-1)
    depth = int(np.asarray(args[1]).reshape(()))
    axis, _, _ = _onehot_geom(node, idx.shape, depth)
    v = np.where(idx < 0, idx + depth, idx)
    targets = np.arange(depth).reshape((1,) * axis + (depth,) + (1,) * (idx.ndim - axis))
    hit = np.expand_dims(v, axis) == targets
    return [np.where(hit, vals[1], vals[0]).astype(vals.dtype)]


# ---- TopK ---------------------------------------------------------------------------------------
def _emit_topk(node, graph, ctx):
    x = node.inputs[0]
    shape = graph.tensors[x].shape
    axis = node.attr("axis", -1) % len(shape)
    k = int(_const(node, graph, None, 1, "k").reshape(-1)[0]) if len(node.inputs) > 1 else node.attr("k")
    outer = prod(shape[:axis])
    inner = prod(shape[axis + 1:])
    vals, inds = (node.outputs + ["", ""])[:2]
    if not vals or not inds:
        raise TinydeployError(f"node {node.name} (TopK): both outputs must be used")
    return (f"td_topk_{_vsfx(node, graph, x)}({ctx.ptr(x)}, {ctx.ptr(vals)}, {ctx.ptr(inds)}, {outer}, "
            f"{shape[axis]}, {inner}, {k}, {int(node.attr('largest', 1))});")


@register("TopK", emit=_emit_topk, header="select.h")
def topk(node, graph, args):
    x = np.asarray(args[0])
    axis = node.attr("axis", -1) % x.ndim
    k = int(np.asarray(args[1]).reshape(-1)[0]) if len(args) > 1 else node.attr("k")
    key = -x if node.attr("largest", 1) and x.dtype.kind != "u" else x
    if node.attr("largest", 1) and x.dtype.kind == "u":
        key = np.iinfo(x.dtype).max - x
    order = np.argsort(key, axis=axis, kind="stable")   # stable: ties keep the lower index first
    idx = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


# ---- masks and constants on the shape kernels ---------------------------------------------------
def _trilu_mask(node, graph, shape, args=None):
    k = _const(node, graph, args, 1, "k")
    k = 0 if k is None else int(k.reshape(()))
    n, m = shape[-2:]
    r, c = np.arange(n)[:, None], np.arange(m)[None, :]
    return (c - r >= k) if node.attr("upper", 1) else (c - r <= k)


def _emit_trilu(node, graph, ctx):
    from .indexing import where_call
    x = node.inputs[0]
    t = graph.tensors[x]
    mask = ctx.array(node.name + "_mask", _trilu_mask(node, graph, t.shape).astype(np.uint8))
    zero = ctx.array(node.name + "_zero", np.zeros(1, t.dtype))
    shape = t.shape
    return where_call(ctx, node, (mask, shape[-2:]), (ctx.ptr(x), shape), (zero, ()), ctx.ptr(node.outputs[0]),
                      shape, nd.esize(graph, x))


@register("Trilu", emit=_emit_trilu, header="shape.h")
def trilu(node, graph, args):
    x = np.asarray(args[0])
    return [np.where(_trilu_mask(node, graph, x.shape, args), x, np.zeros((), x.dtype))]


def _eye(node, shape, dtype):
    return np.eye(shape[0], shape[1], k=node.attr("k", 0), dtype=dtype)


def _emit_eyelike(node, graph, ctx):
    y = graph.tensors[node.outputs[0]]
    src = ctx.array(node.name + "_eye", _eye(node, y.shape, y.dtype))
    return nd.copy_call(ctx, src, ctx.ptr(node.outputs[0]), np.dtype(y.dtype).itemsize, [y.size], [1], [1]) or ";"


@register("EyeLike", emit=_emit_eyelike, header="shape.h")
def eyelike(node, graph, args):
    import onnx.helper
    x = np.asarray(args[0])
    dt = x.dtype if node.attr("dtype") is None else onnx.helper.tensor_dtype_to_np_dtype(node.attr("dtype"))
    return [_eye(node, x.shape, dt)]


def _compress_idx(node, graph, shape, args=None):
    cond = _const(node, graph, args, 1, "condition").reshape(-1).astype(bool)
    axis = node.attr("axis")
    n = prod(shape) if axis is None else shape[axis % len(shape)]
    return np.nonzero(cond[:n])[0]


def _emit_compress(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    shape = graph.tensors[x].shape
    idx = _compress_idx(node, graph, shape)
    axis = node.attr("axis")
    if axis is None:
        outer, n, inner = 1, graph.tensors[x].size, 1
    else:
        axis %= len(shape)
        outer = prod(shape[:axis])
        n, inner = shape[axis], prod(shape[axis + 1:])
    if not idx.size or not graph.tensors[y].size:
        return ";"
    arr = ctx.array(node.name + "_idx", idx.astype(np.int32))
    return (f"td_gather_i32((const uint8_t *){ctx.ptr(x)}, (uint8_t *){ctx.ptr(y)}, {nd.esize(graph, x)}, "
            f"{outer}, {n}, {inner}, {arr}, {idx.size});")


@register("Compress", emit=_emit_compress, header="shape.h")
def compress(node, graph, args):
    x = np.asarray(args[0])
    axis = node.attr("axis")
    idx = _compress_idx(node, graph, x.shape, args)
    return [np.take(x.reshape(-1) if axis is None else x, idx, axis=0 if axis is None else axis % x.ndim)]


# ---- ReverseSequence ---------------------------------------------------------------------------
def _emit_reverse_sequence(node, graph, ctx):
    x, lens = node.inputs[0], node.inputs[1]
    shape = graph.tensors[x].shape
    ta, ba = node.attr("time_axis", 0), node.attr("batch_axis", 1)
    if {ta, ba} != {0, 1}:
        raise TinydeployError(f"node {node.name} (ReverseSequence): time and batch axes must be 0 and 1")
    st = nd.strides(shape)
    inner = prod(shape[2:])
    return (f"td_reverse_sequence_{_isfx(node, graph, lens)}((const uint8_t *){ctx.ptr(x)}, "
            f"(uint8_t *){ctx.ptr(node.outputs[0])}, {nd.esize(graph, x)}, {shape[ta]}, {shape[ba]}, {st[ta]}, "
            f"{st[ba]}, {inner}, {ctx.ptr(lens)});")


@register("ReverseSequence", emit=_emit_reverse_sequence, header="select.h")
def reverse_sequence(node, graph, args):
    x, lens = np.asarray(args[0]), np.asarray(args[1]).astype(np.int64)
    ta, ba = node.attr("time_axis", 0), node.attr("batch_axis", 1)
    y = x.copy()
    for b, L in enumerate(lens):
        L = int(min(max(L, 0), x.shape[ta]))
        src = [slice(None)] * x.ndim
        src[ba], src[ta] = b, slice(None, None, -1) if L == x.shape[ta] else slice(L - 1, None, -1) if L else slice(0, 0)
        dst = [slice(None)] * x.ndim
        dst[ba], dst[ta] = b, slice(0, L)
        y[tuple(dst)] = x[tuple(src)]
    return [y]
