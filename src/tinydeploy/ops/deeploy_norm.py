"""Deeploy's integer softmaxes and normalisations over the last axis (docs/deeploy_dialect.md), with
the arithmetic of its C kernels (runtime/kernels/deeploy.h); types as in ops/deeploy.py.

iSoftmax(coeffA, coeffB, coeffC, log2, n_levels)   (Generic/src/Softmax_s8.c Softmax_s8_s8)
    per row: t = x - max;  z = clamp((int8)(-t / log2), 0, 31);  p = t + z·log2
             e = (uint32)((coeffA·(p + coeffB)² + coeffC) >> z);  y = (uint32)(e·(n - 1)) / Σe
    (an I-BERT second-order exp). y is in [0, n - 1]. The C reads e for max - x < 256 (every 8-bit
    input) from a 256-entry table made by the same function as the golden model.
iRMSNorm(D, n_levels), weight w   (PULPOpen/src/iRMSnorm.c, Generic/src/iRMSNorm_s8.c)
    per row of L: s = isqrt(Σx² / L + 1);  y = clamp(((x·w) / s) >> log2(D), -n/2, n/2 - 1)
    C division (truncation), arithmetic shift; int32.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinydeployError
from .deeploy import call, dialect_op, int_attr, int_const, log2_attr, out_levels, result, to_i32, wrap8, wrap32
from .registry import prod


def last_axis(node, shape) -> tuple[int, int]:
    """(rows, L): Deeploy's kernels work on contiguous rows of the last axis (or the trailing axes
    from `axis`, for the norms)."""
    rank = len(shape)
    axis = node.attr("axis", -1)
    if not -rank <= axis < rank:
        raise TinydeployError(f"node {node.name} ({node.op}): axis {axis} out of range for rank {rank}")
    axis %= rank
    if node.op in SOFTMAXES and axis != rank - 1:
        raise TinydeployError(f"node {node.name} ({node.op}): only the last axis is supported (axis {axis})")
    return prod(shape[:axis]), prod(shape[axis:])


def c_div(a, b):
    """C's integer division (truncation toward zero) on int64 arrays."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


# ---- iSoftmax -------------------------------------------------------------------------------------
def _isoftmax_params(node):
    a, b, c, log2, n = (int_attr(node, k) for k in ("coeffA", "coeffB", "coeffC", "log2", "n_levels"))
    if log2 < 1 or n < 2:
        raise TinydeployError(f"node {node.name} ({node.op}): log2 = {log2} and n_levels = {n} must be positive")
    return a, b, c, log2, n


def isoftmax_exp(d, a, b, c, log2):
    """e of an element d = max - x >= 0 below its row's maximum (int64 array)."""
    z = np.clip(wrap8(d // log2), 0, 31)
    p = z * log2 - d
    return ((a * (p + b) ** 2 + c).astype(np.uint64) >> z.astype(np.uint64)).astype(np.int64) & 0xFFFFFFFF


def isoftmax_int(x, a, b, c, log2, n):
    """Softmax_s8_s8 on the rows of int64 array x (last axis)."""
    e = isoftmax_exp(x.max(axis=-1, keepdims=True) - x, a, b, c, log2)
    s = e.sum(axis=-1, keepdims=True) & 0xFFFFFFFF
    return np.where(s == 0, 0, ((e * (n - 1)) & 0xFFFFFFFF) // np.maximum(s, 1))


def _emit_isoftmax(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    rows, L = last_axis(node, x.shape)
    a, b, c, log2, n = _isoftmax_params(node)
    table = ctx.array(node.name + "_exp", isoftmax_exp(np.arange(256), a, b, c, log2).astype(np.uint32))
    return call("isoftmax", node, graph, ctx, table, rows, L, a, b, f"INT64_C({c})", log2, n)


SOFTMAXES = ("iSoftmax", "ITAMax", "ITAPartialMax")


@dialect_op("iSoftmax", _emit_isoftmax, 2)
def isoftmax(node, graph, args):
    x = np.asarray(args[0])
    rows, L = last_axis(node, x.shape)
    a, b, c, log2, n = _isoftmax_params(node)
    y = isoftmax_int(to_i32(x).reshape(rows, L), a, b, c, log2, n)
    lo, hi, dt = out_levels(n, False)
    return [result(node, x.dtype, y.reshape(x.shape), dt, lo, hi)]


# ---- iRMSNorm -------------------------------------------------------------------------------------
def irmsnorm_int(x, w, s, n):
    L = x.shape[-1]
    ss = wrap32((x * x).sum(axis=-1, keepdims=True))
    std = np.array([math.isqrt(max(int(v), 0)) for v in (c_div(ss, L) + 1).reshape(-1)], np.int64)
    std = np.maximum(std.reshape(ss.shape), 1)
    return np.clip(c_div(wrap32(x * w), std) >> s, -(n // 2), n // 2 - 1)


def _irms_params(node, graph):
    x = graph.tensors[node.inputs[0]]
    rows, L = last_axis(node, x.shape)
    w = int_const(node, graph, 1, "weight").reshape(-1)
    if w.size != L:
        raise TinydeployError(f"node {node.name} ({node.op}): weight has {w.size} values for rows of {L}")
    return rows, L, w, log2_attr(node, "D"), int_attr(node, "n_levels", 256, hi=None)


def _emit_irmsnorm(node, graph, ctx) -> str:
    rows, L, w, s, n = _irms_params(node, graph)
    return call("irmsnorm", node, graph, ctx, ctx.array(node.name + "_w", w), rows, L, s, -(n // 2), n // 2 - 1)


@dialect_op("iRMSNorm", _emit_irmsnorm, 2)
def irmsnorm(node, graph, args):
    x = np.asarray(args[0])
    rows, L = last_axis(node, x.shape)
    n = int_attr(node, "n_levels", 256, hi=None)
    y = irmsnorm_int(to_i32(x).reshape(rows, L), to_i32(args[1]).reshape(-1), log2_attr(node, "D"), n)
    return [result(node, x.dtype, y.reshape(x.shape), out_levels(n, True)[2], -(n // 2), n // 2 - 1)]


# ---- ITAMax, ITAPartialMax (ITA's shift softmax) ----------------------------------------------------
def _ita_shift(d):
    """(uint8)((d + 16) >> 5), bounded to 31 for the 256 >> shift that follows (0 either way)."""
    return np.minimum(((d + 16) >> 5) & 255, 31)


def itamax_int(x, n):
    """ITAMax_s8 (Generic/src/Softmax_s8.c) on the rows of x: y = ((n - 1)·256 / Σ 256 >> sh) >> sh."""
    sh = _ita_shift(np.maximum(x.max(axis=-1, keepdims=True), -128) - x)     # int8_t max = -128 first
    total = (256 >> sh).sum(axis=-1, keepdims=True) & 0xFFFFFFFF
    return np.where(total == 0, 0, ((((n - 1) * 256) & 0xFFFFFFFF) // np.maximum(total, 1)) >> sh)


def itapartialmax_int(x, n, gw):
    """ITAPartialMax_s8: the row's maximum and exponent sum found group by group (a running
    maximum that starts at -128, the partial sum shifted down when the maximum grows)."""
    rows, L = x.shape
    gmax = np.full((rows, 1), -128, np.int64)
    psum = np.zeros((rows, 1), np.int64)
    for g in range(L // gw):
        blk = x[:, g * gw:(g + 1) * gw]
        cmax = np.maximum(blk.max(axis=1, keepdims=True), -128)
        grow = cmax > gmax
        shift_sum = np.where(grow, (cmax - gmax + 16) >> 5, 0)
        gmax = np.where(grow, cmax, gmax)
        esum = (256 >> _ita_shift(gmax - blk)).sum(axis=1, keepdims=True)
        psum = ((psum >> np.minimum(shift_sum, 63)) + esum) & 0xFFFFFFFF
    inv = ((n // 2 - 1) * 256) // np.maximum(psum, 1)
    return np.where(psum == 0, 0, inv >> _ita_shift(gmax - x))


def _ita_params(node, shape):
    rows, L = last_axis(node, shape)
    n = int_attr(node, "n_levels", hi=None)
    gw = int_attr(node, "group_width") if node.op == "ITAPartialMax" else L
    if n < 2 or gw < 1:
        raise TinydeployError(f"node {node.name} ({node.op}): n_levels = {n} and group_width = {gw} must be positive")
    return rows, L, n, gw


def _emit_ita(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    rows, L, n, gw = _ita_params(node, x.shape)
    return call("itamax", node, graph, ctx, rows, L, n, gw if node.op == "ITAPartialMax" else 0)


def _ita(node, graph, args):
    x = np.asarray(args[0])
    rows, L, n, gw = _ita_params(node, x.shape)
    v = to_i32(x).reshape(rows, L)
    y = itapartialmax_int(v, n, gw) if node.op == "ITAPartialMax" else itamax_int(v, n)
    lo, hi, dt = out_levels(n, False)
    return [result(node, x.dtype, y.reshape(x.shape), dt, lo, hi)]


for _op in ("ITAMax", "ITAPartialMax"):
    dialect_op(_op, _emit_ita, 2)(_ita)


# ---- iLayerNorm ---------------------------------------------------------------------------------------
def ilayernorm_int(x, w, bias, s):
    """Layernorm_s8_s8 (Generic/src/Layernorm_s8.c) on the rows of x: no clamp, (int8) wraps."""
    L = x.shape[-1]
    mean = c_div(wrap32(x.sum(axis=-1, keepdims=True)), L)
    t = ((x - mean + 2**15) & 0xFFFF) - 2**15                     # (int16_t)
    var = c_div(wrap32((t * t).sum(axis=-1, keepdims=True)), L) + 1
    std = np.array([math.isqrt(int(v)) if v > 0 else 0 for v in var.reshape(-1)], np.int64).reshape(var.shape)
    return wrap8((c_div((x - mean) * w, np.maximum(std, 1)) + bias) >> s)


def _emit_ilayernorm(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    rows, L = last_axis(node, x.shape)
    w, b = (int_const(node, graph, i, k).reshape(-1) for i, k in ((1, "weight"), (2, "bias")))
    if w.size != L or b.size != L:
        raise TinydeployError(f"node {node.name} ({node.op}): weight and bias need {L} values each")
    return call("ilayernorm", node, graph, ctx, ctx.array(node.name + "_w", w), ctx.array(node.name + "_b", b),
                rows, L, log2_attr(node, "D"))


@dialect_op("iLayerNorm", _emit_ilayernorm, 3)
def ilayernorm(node, graph, args):
    x = np.asarray(args[0])
    rows, L = last_axis(node, x.shape)
    y = ilayernorm_int(to_i32(x).reshape(rows, L), to_i32(args[1]).reshape(-1), to_i32(args[2]).reshape(-1),
                       log2_attr(node, "D"))
    return [result(node, x.dtype, y.reshape(x.shape), np.int8, -128, 127)]
