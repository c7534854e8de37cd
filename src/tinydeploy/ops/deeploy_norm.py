"""Deeploy's integer softmaxes and normalisations over the last axis (docs/deeploy_dialect.md), with
the arithmetic of its C kernels (runtime/kernels/deeploy.h); types as in ops/deeploy.py.

iSoftmax(coeffA, coeffB, coeffC, log2, n_levels)   (Generic/src/Softmax_s8.c Softmax_s8_s8)
    per row: t = x - max;  z = clamp((int8)(-t / log2), 0, 31);  p = t + z·log2
             e = (uint32)((coeffA·(p + coeffB)² + coeffC) >> z);  y = (uint32)(e·(n - 1)) / Σe
    (an I-BERT second-order exp). y is in [0, n - 1].
iRMSNorm(D, n_levels), weight w   (PULPOpen/src/iRMSnorm.c, Generic/src/iRMSNorm_s8.c)
    per row of L: s = isqrt(Σx² / L + 1);  y = clamp(((x·w) / s) >> log2(D), -n/2, n/2 - 1)
    C division (truncation), arithmetic shift; int32.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinydeployError
from .deeploy import int_attr, no_wider, int_const, log2_attr, out_levels, result, suffix, to_i32, wrap32
from .registry import prod, register


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


def wrap8(v):
    return ((np.asarray(v, np.int64) + 128) & 255) - 128


# ---- iSoftmax -------------------------------------------------------------------------------------
def _isoftmax_params(node):
    a, b, c, log2, n = (int_attr(node, k) for k in ("coeffA", "coeffB", "coeffC", "log2", "n_levels"))
    if log2 < 1 or n < 2:
        raise TinydeployError(f"node {node.name} ({node.op}): log2 = {log2} and n_levels = {n} must be positive")
    return a, b, c, log2, n


def isoftmax_int(x, a, b, c, log2, n):
    """Softmax_s8_s8 on the rows of int64 array x (last axis)."""
    t = x - x.max(axis=-1, keepdims=True)
    z = np.clip(wrap8(c_div(-t, log2)), 0, 31)
    p = t + z * log2
    e = ((a * (p + b) ** 2 + c).astype(np.uint64) >> z.astype(np.uint64)).astype(np.int64) & 0xFFFFFFFF
    s = e.sum(axis=-1, keepdims=True) & 0xFFFFFFFF
    return np.where(s == 0, 0, ((e * (n - 1)) & 0xFFFFFFFF) // np.maximum(s, 1))


def _emit_isoftmax(node, graph, ctx) -> str:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    rows, L = last_axis(node, x.shape)
    a, b, c, log2, n = _isoftmax_params(node)
    (buf,) = ctx.scratch(_isoftmax_scratch(node, graph))
    return (f"td_isoftmax_{suffix(x.dtype, node)}_{suffix(y.dtype, node)}({ctx.ptr(node.inputs[0])}, "
            f"{ctx.ptr(node.outputs[0])}, {buf}, {rows}, {L}, {a}, {b}, INT64_C({c}), {log2}, {n});")


def _isoftmax_scratch(node, graph):
    return [(np.uint32, last_axis(node, graph.tensors[node.inputs[0]].shape)[1])]


def _scratch_bytes(pieces_fn):
    from ..codegen.ctext import scratch_layout
    return lambda node, graph, kernels: scratch_layout(pieces_fn(node, graph))[1]


SOFTMAXES = ("iSoftmax", "ITAMax", "ITAPartialMax")


@register("iSoftmax", emit=_emit_isoftmax, inplace=no_wider, header="deeploy.h",
          scratch=_scratch_bytes(_isoftmax_scratch), macs=lambda node, graph: 2 * graph.tensors[node.inputs[0]].size)
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
    return rows, L, w, log2_attr(node, "D"), int_attr(node, "n_levels", 256)


def _emit_irmsnorm(node, graph, ctx) -> str:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    rows, L, w, s, n = _irms_params(node, graph)
    return (f"td_irmsnorm_{suffix(x.dtype, node)}_{suffix(y.dtype, node)}({ctx.ptr(node.inputs[0])}, "
            f"{ctx.ptr(node.outputs[0])}, {ctx.array(node.name + '_w', w)}, {rows}, {L}, {s}, {-(n // 2)}, {n // 2 - 1});")


@register("iRMSNorm", emit=_emit_irmsnorm, inplace=no_wider, header="deeploy.h",
          macs=lambda node, graph: 2 * graph.tensors[node.inputs[0]].size)
def irmsnorm(node, graph, args):
    x = np.asarray(args[0])
    rows, L = last_axis(node, x.shape)
    n = int_attr(node, "n_levels", 256)
    y = irmsnorm_int(to_i32(x).reshape(rows, L), to_i32(args[1]).reshape(-1), log2_attr(node, "D"), n)
    return [result(node, x.dtype, y.reshape(x.shape), out_levels(n, True)[2], -(n // 2), n // 2 - 1)]
