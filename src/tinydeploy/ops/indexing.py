"""Data movement that reads by index or value: Gather, Pad, CenterCropPad, Where, Cast / CastLike,
BitCast (an alias), and the constant generators ConstantOfShape and Range (folded at compile
time). Kernels in runtime/kernels/shape.h; integer lowering in ops/requant.py."""
from __future__ import annotations

import numpy as np

from ..codegen.ctext import c_literal, ctype
from ..errors import TinydeployError
from ..limits import check_extent
from . import nd
from .registry import prod, register
from .requant import lower_gather, lower_pad, lower_where
from .shape import _const
from .tiles import elementwise


# ---- Gather ---------------------------------------------------------------------------------------
def _gather_geom(shape, axis):
    axis %= len(shape)
    outer = prod(shape[:axis])
    inner = prod(shape[axis + 1:])
    return axis, outer, shape[axis], inner


def _emit_gather(node, graph, ctx):
    x, idx = node.inputs[0], node.inputs[1]
    shape = graph.tensors[x].shape
    axis, outer, n, inner = _gather_geom(shape, node.attr("axis", 0))
    it = graph.tensors[idx]
    if it.is_const:
        v = it.data.reshape(-1).astype(np.int64)
        v = np.where(v < 0, v + n, v)
        if np.any((v < 0) | (v >= n)):
            raise TinydeployError(f"node {node.name} (Gather): index out of range for axis of size {n}")
        iptr, kind = ctx.array(node.name + "_idx", v.astype(np.int32)), "i32"
    elif np.dtype(it.dtype) in (np.dtype(np.int32), np.dtype(np.int64)):
        iptr, kind = ctx.ptr(idx), "i" + str(8 * np.dtype(it.dtype).itemsize)
    else:
        raise TinydeployError(f"node {node.name} (Gather): indices must be int32 or int64")
    if graph.tensors[node.outputs[0]].size == 0:
        return ";"
    return (f"td_gather_{kind}((const uint8_t *){ctx.ptr(x)}, (uint8_t *){ctx.ptr(node.outputs[0])}, "
            f"{nd.esize(graph, x)}, {outer}, {n}, {inner}, {iptr}, {it.size});")


@register("Gather", emit=_emit_gather, lower=lower_gather, header="shape.h")
def gather(node, graph, args):
    x, idx = np.asarray(args[0]), np.asarray(args[1]).astype(np.int64)
    axis = node.attr("axis", 0) % x.ndim
    n = x.shape[axis]
    idx = np.where(idx < 0, idx + n, idx)
    bad = (idx < 0) | (idx >= n)
    if np.any(bad):  # the C kernel's rule for invalid input: zeros
        safe = np.take(x, np.clip(idx, 0, max(n - 1, 0)), axis=axis)
        mask = bad.reshape((1,) * axis + idx.shape + (1,) * (x.ndim - axis - 1))
        return [np.where(mask, np.zeros((), x.dtype), safe)]
    return [np.take(x, idx, axis=axis)]


# ---- Pad --------------------------------------------------------------------------------------------
PAD_MODES = {"constant": 0, "reflect": 1, "edge": 2, "wrap": 3}


def pad_params(node, graph, rank, args=None):
    """(leading pads, trailing pads, mode, constant value or None)."""
    if node.attr("_opset", 13) < 11:
        pads, value = list(node.attr("pads")), node.attr("value", 0.0)
    else:
        pads = _const(node, graph, args, 1, "pads").reshape(-1).tolist()
        v = _const(node, graph, args, 2, "constant_value")
        value = None if v is None else v.reshape(-1)[0]
    axes = _const(node, graph, args, 3, "axes") if node.attr("_opset", 13) >= 18 else None
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes.reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise TinydeployError(f"node {node.name} (Pad): pads has {len(pads)} values, expected {2 * len(axes)} "
                              f"(2 per padded axis)")
    lo, hi = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        lo[a], hi[a] = int(pads[k]), int(pads[k + len(axes)])
    mode = node.attr("mode", "constant")
    if mode not in PAD_MODES:
        raise TinydeployError(f"node {node.name} (Pad): mode '{mode}' is not supported")
    return lo, hi, mode, value


def _emit_pad(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    shape, out = graph.tensors[x].shape, graph.tensors[y].shape
    lo, hi, mode, value = pad_params(node, graph, len(shape))
    dt = np.dtype(graph.tensors[x].dtype)
    if graph.tensors[y].size == 0:
        return ";"
    if graph.tensors[x].size == 0 and mode != "constant":
        raise TinydeployError(f"node {node.name} (Pad): mode {mode} needs a non-empty input")
    dims = ctx.array(node.name + "_dims", np.array(list(shape) + list(out) + lo, np.int32))
    val = ctx.array(node.name + "_value", np.array([0 if value is None else value]).astype(dt))
    return (f"td_pad((const uint8_t *){ctx.ptr(x)}, (uint8_t *){ctx.ptr(y)}, {dt.itemsize}, {len(shape)}, "
            f"{dims}, {PAD_MODES[mode]}, (const uint8_t *){val});")


@register("Pad", emit=_emit_pad, lower=lower_pad, header="shape.h")
def pad(node, graph, args):
    x = np.asarray(args[0])
    lo, hi, mode, value = pad_params(node, graph, x.ndim, args)
    # negative pads crop: apply them as a slice first, then pad the rest
    crop = tuple(slice(max(-a, 0), x.shape[d] - max(-b, 0)) for d, (a, b) in enumerate(zip(lo, hi)))
    x = x[crop]
    widths = [(max(a, 0), max(b, 0)) for a, b in zip(lo, hi)]
    # bounded before np.pad allocates: a Pad read leniently (opset 2) has no ONNX inference to check it
    check_extent(f"node {node.name} (Pad): output", [n + a + b for n, (a, b) in zip(x.shape, widths)], x.dtype)
    if mode == "constant":
        return [np.pad(x, widths, mode="constant", constant_values=0 if value is None else value)]
    return [np.pad(x, widths, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])]


# ---- CenterCropPad: a Pad whose leading pads are negative (crop) or positive (pad), value 0 ---------
def _center(node, graph, shape, args=None):
    target = _const(node, graph, args, 1, "shape").reshape(-1).tolist()
    axes = node.attr("axes")
    rank = len(shape)
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    lo, out = [0] * rank, list(shape)
    for a, t in zip(axes, target):
        lo[a] = -((shape[a] - t) // 2) if t < shape[a] else (t - shape[a]) // 2
        out[a] = int(t)
    return lo, out


def _emit_center_crop_pad(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    shape = graph.tensors[x].shape
    lo, out = _center(node, graph, shape)
    if graph.tensors[y].size == 0:
        return ";"
    dims = ctx.array(node.name + "_dims", np.array(list(shape) + out + lo, np.int32))
    zero = ctx.array(node.name + "_zero", np.zeros(1, graph.tensors[x].dtype))
    return (f"td_pad((const uint8_t *){ctx.ptr(x)}, (uint8_t *){ctx.ptr(y)}, {nd.esize(graph, x)}, {len(shape)}, "
            f"{dims}, 0, (const uint8_t *){zero});")


@register("CenterCropPad", emit=_emit_center_crop_pad, header="shape.h")
def center_crop_pad(node, graph, args):
    x = np.asarray(args[0])
    lo, out = _center(node, graph, x.shape, args)
    y = np.zeros(out, x.dtype)
    src = tuple(slice(max(-a, 0), max(-a, 0) + min(o, n)) for a, o, n in zip(lo, out, x.shape))
    dst = tuple(slice(max(a, 0), max(a, 0) + min(o, n)) for a, o, n in zip(lo, out, x.shape))
    y[dst] = x[src]
    return [y]


# ---- BitCast: the same bytes under another element type of the same width (no code) ------------
def _check_bitcast(node, graph, ctx):
    src, dst = np.dtype(graph.tensors[node.inputs[0]].dtype), np.dtype(graph.tensors[node.outputs[0]].dtype)
    if src.itemsize != dst.itemsize:
        raise TinydeployError(f"node {node.name} (BitCast): {src.name} and {dst.name} differ in width")
    x = node.inputs[0]
    if graph.tensors[x].is_const:   # an alias of a constant has its own buffer: copy
        return nd.copy_call(ctx, ctx.ptr(x), ctx.ptr(node.outputs[0]), src.itemsize, [graph.tensors[x].size],
                            [1], [1]) or ";"
    return None


@register("BitCast", alias=True, emit=_check_bitcast, header="shape.h")
def bitcast(node, graph, args):
    x = np.asarray(args[0]).copy(order="C")   # (ascontiguousarray would make a scalar 1-D)
    return [x.view(_cast_to(node))]


# ---- Where --------------------------------------------------------------------------------------
def where_call(ctx, node, c, x, y, out, oshape, esz) -> str:
    """td_where over oshape; c, x, y are (pointer expression, shape) broadcast against it."""
    if prod(oshape) == 0:
        return ";"
    dims, ss = nd.collapse(oshape, *[nd.bcast_strides(shape, oshape) for _, shape in (c, x, y)])
    arr = ctx.array(node.name + "_nd", np.array(dims + [s for st in ss for s in st], np.int32))
    r = len(dims)
    return (f"td_where((const uint8_t *){c[0]}, (const uint8_t *){x[0]}, (const uint8_t *){y[0]}, "
            f"(uint8_t *){out}, {esz}, {r}, {arr}, {arr} + {r}, {arr} + {2 * r}, {arr} + {3 * r});")


def _emit_where(node, graph, ctx):
    c, x, y = node.inputs
    out = node.outputs[0]
    return where_call(ctx, node, *[(ctx.ptr(i), graph.tensors[i].shape) for i in (c, x, y)], ctx.ptr(out),
                      graph.tensors[out].shape, nd.esize(graph, x))


@register("Where", emit=_emit_where, lower=lower_where, header="shape.h")
def where(node, graph, args):
    return [np.where(np.asarray(args[0]).astype(bool), args[1], args[2])]


# ---- Cast / CastLike ------------------------------------------------------------------------------
def cast_value(x: np.ndarray, to: np.dtype) -> np.ndarray:
    """The C kernel's conversion: float → integer truncates and saturates (NaN → 0)."""
    to = np.dtype(to)
    if x.dtype.kind == "f" and to.kind in "iu":
        info = np.iinfo(to)
        with np.errstate(invalid="ignore"):
            t = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0))
            # compare in the source type, as C does, before converting
            lo, hi = x.dtype.type(info.min), x.dtype.type(info.max)
            out = np.where(t <= lo, info.min, np.where(t >= hi, info.max, 0)).astype(to)
            mid = (t > lo) & (t < hi)
            out[mid] = t[mid].astype(to)
        return out
    if to == np.bool_:
        return x != 0
    with np.errstate(all="ignore"):
        return x.astype(to)


def _emit_cast(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    tx, ty = np.dtype(graph.tensors[x].dtype), np.dtype(graph.tensors[y].dtype)
    n = graph.tensors[x].size
    px, py = ctx.ptr(x), ctx.ptr(y)
    if ty == np.bool_:
        return f"TD_CAST_BOOL({ctype(tx)}, {px}, {py}, {n});"
    if tx.kind == "f" and ty.kind in "iu":
        info = np.iinfo(ty)
        return (f"TD_CAST_SAT({ctype(tx)}, {ctype(ty)}, {c_literal(info.min, ty)}, {lit(info.max, ty)}, "
                f"{px}, {py}, {n});")
    return f"TD_CAST({ctype(tx)}, {ctype(ty)}, {px}, {py}, {n});"


def lit(v, dt):
    return f"UINT64_C({int(v)})" if np.dtype(dt) == np.uint64 else c_literal(v, dt)


def _cast_to(node):
    import onnx.helper
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(node.attr("to"))))


@register("Cast", emit=_emit_cast, header="shape.h", tiling=elementwise)
def cast(node, graph, args):
    x = np.asarray(args[0])
    try:
        to = _cast_to(node)
    except Exception:
        raise TinydeployError(f"node {node.name} (Cast): target type {node.attr('to')} is not supported") from None
    if to.kind not in "fiub" or to.itemsize > 8 or to == np.float16:
        raise TinydeployError(f"node {node.name} (Cast): target type {to.name} is not supported")
    return [cast_value(x, to)]


@register("CastLike", emit=_emit_cast, header="shape.h")
def cast_like(node, graph, args):
    return [cast_value(np.asarray(args[0]), np.asarray(args[1]).dtype)]


# ---- constant generators (inputs are constants in a static graph: always folded) --------------
@register("ConstantOfShape")
def constant_of_shape(node, graph, args):
    v = node.attr("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    return [np.full(tuple(int(s) for s in np.asarray(args[0]).reshape(-1)), v[0], v.dtype)]


@register("Range")
def range_(node, graph, args):
    start, limit, delta = (np.asarray(a).reshape(()) for a in args)
    n = max(int(np.ceil((limit - start) / delta)), 0)
    return [(start + np.arange(n, dtype=start.dtype) * delta).astype(start.dtype)]
