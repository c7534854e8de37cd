"""Data movement, dtype-generic: Reshape, Flatten, Squeeze, Unsqueeze (aliases: no code), Identity,
Transpose, Concat, Split, Slice, Expand, Tile, DepthToSpace, SpaceToDepth, and the shape queries
Shape / Size (always folded: shapes are static).

Every kernel here is one or more strided copies (`td_copy_nd`, runtime/kernels/td_nd.h): Python
computes, at compile time, the loop nest and the element strides of source and destination. Shape
parameters (Reshape's shape, Slice's starts …) must be constants: the compiler is static.
Integer lowering: ops/requant.py (`lower_move`) runs these ops on int8 tensors directly.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..limits import check_extent
from . import nd
from .registry import prod, register
from .requant import lower_concat, lower_move


def _const(node, graph, args, k, what):
    """Input k as a numpy value (from args when golden runs, else the graph constant)."""
    if len(node.inputs) <= k or not node.inputs[k]:
        return None
    # golden passes args (complete_types runs before folding); emit passes None: C needs a constant
    name = node.inputs[k]
    v = args[k] if args is not None else graph.const(name)
    if v is None or (args is not None and not graph.tensors[name].is_const and graph.from_input_values(name)):
        raise TinydeployError(f"node {node.name} ({node.op}): {what} '{name}' must be a constant "
                              f"(not computed from input values)")
    return np.asarray(v)


def _axes(node, graph, args, k=1):
    """Axes from the attribute (older opsets) or input k (opset 13+)."""
    if "axes" in node.attrs:
        return [int(a) for a in node.attrs["axes"]]
    v = _const(node, graph, args, k, "axes")
    return None if v is None else [int(a) for a in v.reshape(-1)]


def _shape(graph, name):
    return graph.tensors[name].shape


# ---- aliases: the output is the input's bytes under another shape ----------------------------
def reshape_target(in_shape, spec, allowzero=False):
    spec = [int(s) for s in spec]
    out = [in_shape[k] if s == 0 and not allowzero else s for k, s in enumerate(spec)]
    if -1 in out:
        known = prod([s for s in out if s != -1])
        out[out.index(-1)] = prod(in_shape) // max(known, 1)
    return tuple(out)


def _check_params(node, graph, ctx):
    """Alias ops emit no code, but their shape parameter must still be a compile-time constant.
    Only an alias of a constant (which has a buffer of its own) is a copy."""
    for k in range(1, len(node.inputs)):
        _const(node, graph, None, k, "shape parameter")
    x = node.inputs[0]
    if graph.tensors[x].is_const:
        n = graph.tensors[x].size
        return nd.copy_call(ctx, ctx.ptr(x), ctx.ptr(node.outputs[0]), nd.esize(graph, x), [n], [1], [1]) or ";"
    return None


@register("Reshape", alias=True, emit=_check_params, lower=lower_move, header="shape.h")
def reshape(node, graph, args):
    x = np.asarray(args[0])
    spec = node.attr("shape") if len(args) < 2 else _const(node, graph, args, 1, "shape")
    return [x.reshape(reshape_target(x.shape, np.asarray(spec).reshape(-1), node.attr("allowzero", 0)))]


@register("Flatten", alias=True, emit=_check_params, lower=lower_move, header="shape.h")
def flatten(node, graph, args):
    x = np.asarray(args[0])
    axis = node.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(prod(x.shape[:axis]), -1 if x.size else 0)]


@register("Squeeze", alias=True, emit=_check_params, lower=lower_move, header="shape.h")
def squeeze(node, graph, args):
    x = np.asarray(args[0])
    axes = _axes(node, graph, args)
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(a % x.ndim for a in axes))]


@register("Unsqueeze", alias=True, emit=_check_params, lower=lower_move, header="shape.h")
def unsqueeze(node, graph, args):
    x = np.asarray(args[0])
    axes = _axes(node, graph, args)
    rank = x.ndim + len(axes)
    shape = list(x.shape)
    for a in sorted(a % rank for a in axes):
        shape.insert(a, 1)
    return [x.reshape(shape)]


# ---- Identity / Dropout (inference): a copy (kept when an output is a graph output) -----------
def _emit_identity(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    n = graph.tensors[x].size
    out = nd.copy_call(ctx, ctx.ptr(x), ctx.ptr(y), nd.esize(graph, x), [n], [1], [1])
    if node.op == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
        mask = node.outputs[1]
        ones = ctx.array(node.name + "_mask", np.ones(graph.tensors[mask].size, np.uint8))
        out += "\n" + nd.copy_call(ctx, ones, ctx.ptr(mask), 1, [graph.tensors[mask].size], [1], [1])
    return out or ";"


@register("Identity", emit=_emit_identity, lower=lower_move, header="shape.h")
def identity(node, graph, args):
    return [np.asarray(args[0])]


@register("Dropout", emit=_emit_identity, header="shape.h")
def dropout(node, graph, args):
    """Inference only: the identity, and an all-true mask."""
    training = node.attr("is_test", 1) == 0 if node.attr("_opset", 13) < 7 else False
    if len(node.inputs) > 2 and node.inputs[2]:
        t = _const(node, graph, args, 2, "training_mode")
        training = bool(t.reshape(()).item())
    if training:
        raise TinydeployError(f"node {node.name} (Dropout): training mode is not supported")
    x = np.asarray(args[0])
    return [x, np.ones(x.shape, np.bool_)]


# ---- Transpose and friends: one strided copy --------------------------------------------------
def _perm_copy(ctx, x, y, esz, shape, perm):
    st = nd.strides(shape)
    dims = [shape[p] for p in perm]
    return nd.copy_call(ctx, x, y, esz, dims, [st[p] for p in perm], nd.strides(dims)) or ";"


def _perm(node, rank):
    perm = node.attr("perm")
    return list(range(rank))[::-1] if perm is None else [int(p) % rank for p in perm]


def _emit_transpose(node, graph, ctx):
    shape = _shape(graph, node.inputs[0])
    return _perm_copy(ctx, ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), nd.esize(graph, node.inputs[0]),
                      shape, _perm(node, len(shape)))


def _tiling_transpose(node, graph):
    """Tiles of the output's first axis: one strided window of the input axis it comes from."""
    from .tiles import Axis, Dim, TileSpec, tensor
    x, y = node.inputs[0], node.outputs[0]
    shape = _shape(graph, x)
    if len(shape) < 2:
        return None
    p0 = _perm(node, len(shape))[0]
    ax = tuple(Axis("T" if k == p0 else None) for k in range(len(shape)))
    out = tuple(Axis("T" if k == 0 else None) for k in range(len(shape)))
    return TileSpec((Dim("T", shape[p0]),), (tensor(graph, x, "in", ax), tensor(graph, y, "out", out)),
                    elems=graph.tensors[y].size)


@register("Transpose", emit=_emit_transpose, lower=lower_move, header="shape.h", tiling=_tiling_transpose)
def transpose(node, graph, args):
    x = np.asarray(args[0])
    return [np.transpose(x, _perm(node, x.ndim))]


def _d2s(node, shape):
    """DepthToSpace / SpaceToDepth as (reshaped input shape, permutation)."""
    b = int(node.attr("blocksize"))
    n, c, h, w = shape
    if node.op == "DepthToSpace":
        if node.attr("mode", "DCR") == "DCR":
            return (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
        return (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)
    if node.attr("mode", "DCR") == "CRD":
        return (n, c, h // b, b, w // b, b), (0, 1, 3, 5, 2, 4)
    return (n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4)


def _emit_d2s(node, graph, ctx):
    shape6, perm = _d2s(node, _shape(graph, node.inputs[0]))
    return _perm_copy(ctx, ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), nd.esize(graph, node.inputs[0]),
                      shape6, perm)


def _golden_d2s(node, graph, args):
    x = np.asarray(args[0])
    shape6, perm = _d2s(node, x.shape)
    y = np.transpose(x.reshape(shape6), perm)
    n, c, h, w = x.shape
    b = int(node.attr("blocksize"))
    out = (n, c // (b * b), h * b, w * b) if node.op == "DepthToSpace" else (n, c * b * b, h // b, w // b)
    return [y.reshape(out)]


register("DepthToSpace", emit=_emit_d2s, lower=lower_move, header="shape.h")(_golden_d2s)
register("SpaceToDepth", emit=_emit_d2s, lower=lower_move, header="shape.h")(_golden_d2s)


# ---- Slice --------------------------------------------------------------------------------------
def slices(node, graph, shape, args=None):
    """Python slice per axis, from attributes (opset < 10) or constant inputs."""
    if node.attr("_opset", 13) < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes"), None
    else:
        starts = _const(node, graph, args, 1, "starts").reshape(-1).tolist()
        ends = _const(node, graph, args, 2, "ends").reshape(-1).tolist()
        a = _const(node, graph, args, 3, "axes")
        s = _const(node, graph, args, 4, "steps")
        axes = None if a is None else a.reshape(-1).tolist()
        steps = None if s is None else s.reshape(-1).tolist()
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    out = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        if int(st) == 0:
            raise TinydeployError(f"node {node.name} (Slice): step 0")
        out[a] = _onnx_slice(int(s), int(e), int(st), shape[a])
    return out


def _onnx_slice(start, end, step, dim) -> slice:
    """ONNX clamping, which differs from Python's for negative steps: a start before the
    beginning clamps to 0 (Python: empty), an end before the beginning means "through index 0"."""
    start += dim if start < 0 else 0
    end += dim if end < 0 else 0
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def _emit_slice(node, graph, ctx):
    shape = _shape(graph, node.inputs[0])
    st = nd.strides(shape)
    dims, xs, off = [], [], 0
    for d, sl in enumerate(slices(node, graph, shape)):
        start, stop, step = sl.indices(shape[d])
        dims.append(len(range(start, stop, step)))
        xs.append(step * st[d])
        off += start * st[d] if dims[-1] else 0
    return nd.copy_call(ctx, ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), nd.esize(graph, node.inputs[0]),
                        dims, xs, nd.strides(dims), xoff=off) or ";"


@register("Slice", emit=_emit_slice, lower=lower_move, header="shape.h")
def slice_(node, graph, args):
    x = np.asarray(args[0])
    return [x[tuple(slices(node, graph, x.shape, args))]]


# ---- Concat / Split -----------------------------------------------------------------------------
def _emit_concat(node, graph, ctx):
    out = _shape(graph, node.outputs[0])
    axis = node.attr("axis") % len(out)
    ost, esz, pos, code = nd.strides(out), nd.esize(graph, node.outputs[0]), 0, []
    for i in node.inputs:
        if not i:
            continue
        shape = _shape(graph, i)
        c = nd.copy_call(ctx, ctx.ptr(i), ctx.ptr(node.outputs[0]), esz, shape, nd.strides(shape), ost,
                         yoff=pos * ost[axis])
        code += [c] if c else []
        pos += shape[axis]
    return "\n".join(code) or ";"


def _tiling_concat(node, graph):
    """Tiles of the dims before the axis; each input and the output viewed as (outer, rest)."""
    from .tiles import Axis, Dim, TileSpec, inputs_outputs, tensor
    out = _shape(graph, node.outputs[0])
    axis = node.attr("axis") % len(out)
    outer = prod(out[:axis])
    ins, outs = inputs_outputs(node, graph)
    ops = tuple(tensor(graph, n, k, (Axis("O"), Axis()), (outer, graph.tensors[n].size // outer)) for n, k in ins + outs)
    return TileSpec((Dim("O", outer), Dim("L", graph.tensors[node.outputs[0]].size // outer, tile=False)), ops,
                    elems=graph.tensors[node.outputs[0]].size)


@register("Concat", emit=_emit_concat, lower=lower_concat, header="shape.h", tiling=_tiling_concat)
def concat(node, graph, args):
    arrs = [np.asarray(a) for a in args if a is not None]
    return [np.concatenate(arrs, axis=node.attr("axis"))]


# ---- ShiftIn: a sliding window kept as state (a QDQ decoder's KV cache, models/llama/qdq_decoder.py) --
def _emit_shift_in(node, graph, ctx):
    """y = concat(s[1:], x) along the axis, then s = y: three copies."""
    s, x = node.inputs
    y = node.outputs[0]
    shape = _shape(graph, y)
    axis = node.attr("axis") % len(shape)
    st, esz = nd.strides(shape), nd.esize(graph, y)
    kept = list(shape[:axis]) + [shape[axis] - 1] + list(shape[axis + 1:])
    code = [nd.copy_call(ctx, ctx.ptr(s), ctx.ptr(y), esz, kept, st, st, xoff=st[axis]),
            nd.copy_call(ctx, ctx.ptr(x), ctx.ptr(y), esz, _shape(graph, x), nd.strides(_shape(graph, x)), st,
                         yoff=(shape[axis] - 1) * st[axis]),
            nd.copy_call(ctx, ctx.ptr(y), ctx.ptr(s), esz, shape, st, st)]
    return "\n".join(c for c in code if c)


@register("ShiftIn", emit=_emit_shift_in, header="shape.h")
def shift_in(node, graph, args):
    """inputs: s (state, updated in place), x (one slot along attr axis); output: the new s."""
    if not graph.tensors[node.inputs[0]].state:
        raise TinydeployError(f"node {node.name}: ShiftIn's input '{node.inputs[0]}' is not a state tensor")
    s, x = args
    y = np.concatenate([np.take(s, range(1, s.shape[node.attr("axis")]), axis=node.attr("axis")), x],
                       axis=node.attr("axis"))
    s[...] = y
    return [y]


def split_sizes(node, graph, shape, args=None):
    axis = node.attr("axis", 0) % len(shape)
    n = shape[axis]
    if "split" in node.attrs:
        sizes = list(node.attrs["split"])
    elif len(node.inputs) > 1 and node.inputs[1]:
        sizes = _const(node, graph, args, 1, "split").reshape(-1).tolist()
    else:
        k = node.attr("num_outputs", len(node.outputs))
        each = -(-n // k)
        sizes = [min(each, n - i * each) for i in range(k)]
    return axis, [int(s) for s in sizes]


def _emit_split(node, graph, ctx):
    shape = _shape(graph, node.inputs[0])
    axis, sizes = split_sizes(node, graph, shape)
    st, esz, pos, code = nd.strides(shape), nd.esize(graph, node.inputs[0]), 0, []
    for o, sz in zip(node.outputs, sizes):
        if o:
            dims = list(shape[:axis]) + [sz] + list(shape[axis + 1:])
            c = nd.copy_call(ctx, ctx.ptr(node.inputs[0]), ctx.ptr(o), esz, dims, st, nd.strides(dims),
                             xoff=pos * st[axis])
            code += [c] if c else []
        pos += sz
    return "\n".join(code) or ";"


@register("Split", emit=_emit_split, header="shape.h")
def split(node, graph, args):
    x = np.asarray(args[0])
    axis, sizes = split_sizes(node, graph, x.shape, args)
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


# ---- Expand / Tile -------------------------------------------------------------------------------
def _emit_expand(node, graph, ctx):
    out = _shape(graph, node.outputs[0])
    xs = nd.bcast_strides(_shape(graph, node.inputs[0]), out)
    return nd.copy_call(ctx, ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), nd.esize(graph, node.inputs[0]),
                        out, xs, nd.strides(out)) or ";"


@register("Expand", emit=_emit_expand, lower=lower_move, header="shape.h")
def expand(node, graph, args):
    x = np.asarray(args[0])
    shape = _const(node, graph, args, 1, "shape").reshape(-1).tolist()
    out = np.broadcast_shapes(x.shape, tuple(int(s) for s in shape))
    check_extent(f"node {node.name} (Expand): output", out, x.dtype)   # after a dialect node, no ONNX bound
    return [np.broadcast_to(x, out).copy()]


def _emit_tile(node, graph, ctx):
    shape = _shape(graph, node.inputs[0])
    reps = _const(node, graph, None, 1, "repeats").reshape(-1).tolist()
    xst, ost = nd.strides(shape), nd.strides([s * r for s, r in zip(shape, reps)])
    dims, xs, ys = [], [], []
    for d, (s, r) in enumerate(zip(shape, reps)):   # output dim d = (repeat r, position s)
        dims += [int(r), s]
        xs += [0, xst[d]]
        ys += [s * ost[d], ost[d]]
    return nd.copy_call(ctx, ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]), nd.esize(graph, node.inputs[0]),
                        dims, xs, ys) or ";"


@register("Tile", emit=_emit_tile, lower=lower_move, header="shape.h")
def tile(node, graph, args):
    x, reps = np.asarray(args[0]), _const(node, graph, args, 1, "repeats").reshape(-1).tolist()
    n = max(x.ndim, len(reps))   # np.tile's rule: the shorter one padded with leading 1s
    dims = [s * int(r) for s, r in zip((1,) * (n - x.ndim) + x.shape, [1] * (n - len(reps)) + reps)]
    check_extent(f"node {node.name} (Tile): output", dims, x.dtype)
    return [np.tile(x, reps)]


# ---- shape queries: folded from static shapes (passes/fold_constants.py) ---------------------
@register("Shape")
def shape_(node, graph, args):
    shape = np.asarray(args[0]).shape
    s, e = node.attr("start", 0), node.attr("end", None)
    return [np.array(shape[s:e] if e is not None else shape[s:], np.int64)]


@register("Size")
def size(node, graph, args):
    return [np.array(np.asarray(args[0]).size, np.int64)]
