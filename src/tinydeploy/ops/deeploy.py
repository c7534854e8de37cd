"""Deeploy's integer dialect (frontend/dialect.py, docs/deeploy_dialect.md): RequantShift and the
integer divisions, with the arithmetic of Deeploy's own C kernels (runtime/kernels/deeploy.h).

Deeploy's files declare these tensors float32 holding integers; its code generator infers integer
types and its kernels compute in int32. So every dialect op takes float32 or integer tensors: a
float element is read as C's (int32_t) cast would (truncation; here saturating, NaN -> 0, where C
is undefined), the integer arithmetic is Deeploy's (int32 wrap-around where its C wraps), and a
float32 input gives a float32 output holding the integer result.

RequantShift(x, mul, add; div, n_levels | n_levels_out, signed)   (Generic/src/RequantShift_s8.c)
    y = clamp((x·mul + add + div/2) >> log2(div), lo, hi)   in int32, arithmetic shift
    [lo, hi] = [-n/2, n/2 - 1] when signed, else [0, n - 1]; mul and add broadcast against x
    (numpy rules; Deeploy's per-channel index is the same for batch 1). No rounding term when div = 1.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from .registry import register
from .tiles import Axis, Dim, TileSpec, elementwise, tensor

I32 = (-(1 << 31), (1 << 31) - 1)
SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.int8): "s8", np.dtype(np.uint8): "u8",
          np.dtype(np.int16): "s16", np.dtype(np.uint16): "u16", np.dtype(np.int32): "s32"}


def scalar(node, key, default=None):
    """An attribute that Deeploy's exporters write as a number or a one-element tensor."""
    v = node.attrs.get(key, default)
    if v is None:
        raise TinydeployError(f"node {node.name} ({node.op}): attribute {key} is required")
    v = np.asarray(v).reshape(-1)
    if v.size != 1:
        raise TinydeployError(f"node {node.name} ({node.op}): attribute {key} must be one number, has {v.size}")
    return v[0].item()


def int_attr(node, key, default=None, hi=I32[1]) -> int:
    """An integer attribute within int32 (the C kernels' parameter type; gcc refuses a wider literal
    there); hi=None for n_levels (2^32 for an int32 output), which out_levels bounds."""
    v = scalar(node, key, default)
    if not np.isfinite(v) or v != int(v):
        raise TinydeployError(f"node {node.name} ({node.op}): attribute {key} = {v} is not an integer")
    if int(v) < I32[0] or (hi is not None and int(v) > hi):
        raise TinydeployError(f"node {node.name} ({node.op}): attribute {key} = {int(v)} is outside "
                              f"[{I32[0]}, {hi}]")
    return int(v)


def log2_attr(node, key) -> int:
    v = int_attr(node, key)
    if v < 1 or v & (v - 1) or v > 1 << 30:
        raise TinydeployError(f"node {node.name} ({node.op}): {key} = {v} must be a power of two in [1, 2^30]")
    return v.bit_length() - 1


def to_i32(x) -> np.ndarray:
    """Elements as the C kernel reads them into int32 (int64 array): floats truncated, saturated."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        x = np.clip(np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0)), *I32)
    return x.astype(np.int64)


def wrap32(v) -> np.ndarray:
    """int64 values reduced to int32 two's complement, as Deeploy's int32 arithmetic wraps."""
    v = np.asarray(v, np.int64) & 0xFFFFFFFF
    return np.where(v >= 1 << 31, v - (1 << 32), v)


def out_dtype(node, x_dtype, int_dtype, lo=None, hi=None) -> np.dtype:
    """The type the file declares for the output (frontend/dialect.py), else float32 for a float32
    input (Deeploy's float-holding-integers files), else int_dtype; it must hold [lo, hi]."""
    dt = np.dtype(node.attrs.get("_dtype") or (np.float32 if np.dtype(x_dtype).kind == "f" else int_dtype))
    if dt not in SUFFIX:
        raise TinydeployError(f"node {node.name} ({node.op}): output type {dt} is not supported")
    if lo is not None and dt.kind in "iu" and not (np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max):
        raise TinydeployError(f"node {node.name} ({node.op}): output type {dt} cannot hold [{lo}, {hi}]")
    return dt


def wrap8(v) -> np.ndarray:
    """C's (int8_t) conversion of int64 values (two's complement)."""
    return ((np.asarray(v, np.int64) + 128) & 255) - 128


def result(node, x_dtype, v, int_dtype, lo=None, hi=None) -> np.ndarray:
    return np.asarray(v).astype(out_dtype(node, x_dtype, int_dtype, lo, hi))


def suffix(dtype, node) -> str:
    if np.dtype(dtype) not in SUFFIX:
        raise TinydeployError(f"node {node.name} ({node.op}): {np.dtype(dtype)} tensors have no C kernel")
    return SUFFIX[np.dtype(dtype)]


def int_const(node, graph, i, what) -> np.ndarray:
    """Constant input i as int32 values (Deeploy writes integers into float tensors)."""
    v = graph.const(node.inputs[i]) if i < len(node.inputs) else None
    if v is None:
        raise TinydeployError(f"node {node.name} ({node.op}): {what} must be a constant")
    f = np.asarray(v, np.float64)
    if not np.all(f == np.round(f)) or f.size and (f.min() < I32[0] or f.max() > I32[1]):
        raise TinydeployError(f"node {node.name} ({node.op}): {what} '{node.inputs[i]}' must hold int32 integers")
    return f.astype(np.int32)


def same_width(node, graph) -> bool:
    """In place when output and input elements have the same size: the kernels read element (row) k
    before writing it, but a narrower output written by one core of a cluster could overwrite input
    that another core has still to read."""
    return graph.tensors[node.outputs[0]].dtype.itemsize == graph.tensors[node.inputs[0]].dtype.itemsize


def call(kernel, node, graph, ctx, *args, ins: int = 1) -> str:
    """td_<kernel>_<input type>_<output type>(inputs..., output, args...): the C call of a dialect op."""
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    ptrs = [ctx.ptr(n) for n in node.inputs[:ins]] + [ctx.ptr(node.outputs[0])]
    return f"td_{kernel}_{suffix(x.dtype, node)}_{suffix(y.dtype, node)}({', '.join(ptrs + [str(a) for a in args])});"


def dialect_op(name, emit, macs_per_element=1, **kw):
    """register() for a dialect op: kernel in deeploy.h, in place for same-size elements."""
    kw.setdefault("inplace", same_width)
    return register(name, emit=emit, header="deeploy.h",
                    macs=lambda node, graph: macs_per_element * graph.tensors[node.inputs[0]].size, **kw)


def out_levels(n: int, signed: bool) -> tuple[int, int, np.dtype]:
    lo, hi = (-(n // 2), n // 2 - 1) if signed else (0, n - 1)
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return lo, hi, np.dtype(dt)
    raise TinydeployError(f"{n} levels do not fit int32")


# ---- RequantShift ---------------------------------------------------------------------------------
def _rqs_params(node):
    n = int_attr(node, "n_levels" if "n_levels" in node.attrs else "n_levels_out", hi=None)
    if n < 2:
        raise TinydeployError(f"node {node.name} ({node.op}): n_levels = {n} must be at least 2")
    try:
        lo, hi, dt = out_levels(n, bool(int_attr(node, "signed", 1)))
    except TinydeployError as e:
        raise TinydeployError(f"node {node.name} ({node.op}): {e}") from None
    return log2_attr(node, "div"), lo, hi, dt


def requant_shift(acc, mul, add, s, lo, hi):
    """Deeploy's formula on int32 values (int64 arrays): wraps as its int32 C does."""
    v = wrap32(acc * np.asarray(mul, np.int64) + np.asarray(add, np.int64) + ((1 << s) >> 1))
    return np.clip(v >> s, lo, hi)


def param_view(node, p, shape, what) -> np.ndarray:
    """mul / add as an array that broadcasts to x's shape: numpy broadcasting, or else (Deeploy's
    per-channel reading, [C, 1, 1] against [1, C, L]) C values along axis 1."""
    p = np.asarray(p)
    try:
        if np.broadcast_shapes(p.shape, tuple(shape)) == tuple(shape):
            return p
    except ValueError:
        pass
    if len(shape) >= 2 and p.size == shape[1]:
        return p.reshape((shape[1],) + (1,) * (len(shape) - 2))
    raise TinydeployError(f"node {node.name} ({node.op}): {what} of shape {list(p.shape)} does not broadcast to "
                          f"the input's {list(shape)}, nor has one value per channel (axis 1)")


def channel_view(shape, pshape) -> tuple[int, int] | None:
    """(C, inner) when a parameter of shape pshape, broadcast to shape, is p[(i / inner) % C] of its
    flattened values (its non-1 axes contiguous); None otherwise."""
    full = (1,) * (len(shape) - len(pshape)) + tuple(pshape)
    axes = [k for k, d in enumerate(full) if d != 1]
    if not axes:
        return 1, 1
    if axes != list(range(axes[0], axes[-1] + 1)):
        return None
    return int(np.prod(full[axes[0]:axes[-1] + 1])), int(np.prod(shape[axes[-1] + 1:], dtype=np.int64))


def _emit_rqs(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    s, lo, hi, _ = _rqs_params(node)
    mul, add = (param_view(node, int_const(node, graph, i, w), x.shape, w) for i, w in ((1, "mul"), (2, "add")))
    pshape = np.broadcast_shapes(mul.shape, add.shape)
    view = channel_view(x.shape, pshape)
    if view is None:   # scattered per-element parameters: spell them out at the input's size
        pshape, view = tuple(x.shape), (x.size, 1)
    m = ctx.array(node.name + "_mul", np.broadcast_to(mul, pshape).astype(np.int32))
    a = ctx.array(node.name + "_add", np.broadcast_to(add, pshape).astype(np.int32))
    return call("rqs", node, graph, ctx, x.size, view[0], view[1], m, a, s, lo, hi)


def _rqs_tiling(node, graph):
    """x viewed as (outer, C, inner) against its parameters' channel view (as _emit_rqs reads them),
    every dim tiled, a per-channel mul / add sliced with C; each tile's node sees its windows in
    that view, the parameters as (1, C tile, 1), so it broadcasts them the numpy way."""
    x = graph.tensors[node.inputs[0]]
    ps = [param_view(node, int_const(node, graph, i, w), x.shape, w) for i, w in ((1, "mul"), (2, "add"))]
    view = channel_view(x.shape, np.broadcast_shapes(*(p.shape for p in ps)))
    if view is None or any(p.size not in (1, view[0]) for p in ps):
        return None   # scattered per-element parameters: one tile
    C, inner = view
    outer = x.size // (C * inner)
    acts = [tensor(graph, n, k, (Axis("O"), Axis("C"), Axis("I")), (outer, C, inner))
            for n, k in ((node.inputs[0], "in"), (node.outputs[0], "out"))]
    params = [tensor(graph, n, "const", (Axis("C" if p.size > 1 else None),), (p.size,)) for n, p in zip(node.inputs[1:3], ps)]

    def sub(tile):
        (_, o), (_, c), (_, i) = (tile.get(d, (0, n)) for d, n in (("O", outer), ("C", C), ("I", inner)))
        return {}, {**{n: (o, c, i) for n in (node.inputs[0], node.outputs[0])},
                    **{n: (1, c if p.size > 1 else 1, 1) for n, p in zip(node.inputs[1:3], ps)}}
    return TileSpec((Dim("O", outer), Dim("C", C), Dim("I", inner)), (acts[0], *params, acts[1]),
                    elems=x.size, sub=sub)


@dialect_op("RequantShift", _emit_rqs, tiling=_rqs_tiling)
def requantshift(node, graph, args):
    s, lo, hi, dt = _rqs_params(node)
    x = np.asarray(args[0])
    mul, add = (param_view(node, to_i32(args[i]), x.shape, w) for i, w in ((1, "mul"), (2, "add")))
    y = np.broadcast_to(requant_shift(to_i32(x), mul, add, s, lo, hi), x.shape)
    return [result(node, x.dtype, y, dt, lo, hi)]


# ---- elementwise: iHardswish, TrueIntegerDiv -------------------------------------------------------
def _emit_unary(kernel, params):
    """Emit for an elementwise dialect op: td_<kernel>_<in>_<out>(x, y, n, params(node)...)."""
    return lambda node, graph, ctx: call(kernel, node, graph, ctx, graph.tensors[node.inputs[0]].size, *params(node))


def _hswish_params(node):
    return int_attr(node, "one_over_six"), int_attr(node, "three"), int_attr(node, "six")


def ihardswish_int(x, one_over_six, three, six):
    """iHardswish_s8_s32 (Generic/src/Hardswish_s8.c): x · (clamp(x + three, 0, six) · one_over_six)."""
    return wrap32(x * wrap32(np.clip(wrap32(x + three), 0, six) * one_over_six))


@dialect_op("iHardswish", _emit_unary("ihswish", _hswish_params), tiling=elementwise)
def ihardswish(node, graph, args):
    x = np.asarray(args[0])
    return [result(node, x.dtype, ihardswish_int(to_i32(x), *_hswish_params(node)), np.int32)]


def true_div_coeff(node) -> int:
    """floor(Delta·eta / (y·eta + eps)): the factor Deeploy's MergeTrueIntegerDivRequantShiftPass
    folds into the next RequantShift (Generic/TopologyOptimizationPasses/Passes.py)."""
    d, eta, eps, y = (scalar(node, k) for k in ("Delta", "eta", "eps", "y"))
    if all(float(v) == int(v) for v in (d, eta, eps, y)):
        den = int(y) * int(eta) + int(eps)
        if den == 0:
            raise TinydeployError(f"node {node.name} ({node.op}): y·eta + eps is 0")
        c = (int(d) * int(eta)) // den
    else:
        c = int(np.floor(float(d) * float(eta) / (float(y) * float(eta) + float(eps))))
    if not I32[0] <= c <= I32[1]:
        raise TinydeployError(f"node {node.name} ({node.op}): coefficient {c} does not fit int32")
    return c


@dialect_op("TrueIntegerDiv", _emit_unary("mulc", lambda node: (true_div_coeff(node),)), tiling=elementwise)
def true_integer_div(node, graph, args):
    x = np.asarray(args[0])
    return [result(node, x.dtype, wrap32(to_i32(x) * true_div_coeff(node)), np.int32)]


# ---- iGELU, iNoNorm --------------------------------------------------------------------------------
def _igelu_params(node):
    b, one = int_attr(node, "b"), int_attr(node, "one")
    return ((b + 128) & 255) - 128, ((one + 2**15) & 0xFFFF) - 2**15     # the kernel's int8_t b, int16_t one


def igelu_int(x, b, one):
    """GELU_s8_s32 (Generic/src/GELU_s8.c): an I-BERT second-order erf, int32."""
    sign = np.sign(x)
    q = np.where(sign * x > -b, -b, sign * x)
    d = q + b
    return wrap32(x * (wrap32(one + sign * (one - d * d)) >> 1))


@dialect_op("iGELU", _emit_unary("igelu", _igelu_params), 2, tiling=elementwise)
def igelu(node, graph, args):
    x = np.asarray(args[0])
    return [result(node, x.dtype, igelu_int(to_i32(x), *_igelu_params(node)), np.int32)]


def inonorm_int(x, w, bias, mul, s):
    """SnitchiNoNorm_s8_s8 (Snitch/src/iNoNorm.c): (int8)(((x·w + bias)·mul) >> log2(D))."""
    return wrap8(wrap32(wrap32(x * w + bias) * mul) >> s)


def _emit_inonorm(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    w = np.broadcast_to(param_view(node, int_const(node, graph, 1, "weights"), x.shape, "weights"), x.shape)
    b = param_view(node, int_const(node, graph, 2, "bias"), x.shape, "bias")
    view = channel_view(x.shape, b.shape) or (x.size, 1)
    if view == (x.size, 1):
        b = np.broadcast_to(b, x.shape)
    return call("inonorm", node, graph, ctx, x.size, ctx.array(node.name + "_w", w.astype(np.int32)),
                ctx.array(node.name + "_b", b.astype(np.int32)), view[0], view[1], int_attr(node, "mul"),
                log2_attr(node, "D"))


@dialect_op("iNoNorm", _emit_inonorm, 2)
def inonorm(node, graph, args):
    x = np.asarray(args[0])
    w, b = (param_view(node, to_i32(args[i]), x.shape, k) for i, k in ((1, "weights"), (2, "bias")))
    y = np.broadcast_to(inonorm_int(to_i32(x), w, b, int_attr(node, "mul"), log2_attr(node, "D")), x.shape)
    return [result(node, x.dtype, y, np.int8, -128, 127)]
