"""Softmax and LogSoftmax (float), and the integer QSoftmax (int8 in, int8 out, no float at run time).

QSoftmax (runtime/kernels/softmax.h has the step-by-step formula): exp by a 256-entry uint16 table
indexed by (max - x), a uint32 sum, one 32-bit division per row for a fixed-point reciprocal that
already contains 1/sy, and one rounding per output. Measured against onnxruntime (float softmax,
round half to even): max 1 LSB, mean signed error ~0 (docs/tolerance.md).
Opset < 13 semantics (softmax over the flattened trailing dims from `axis`) are honoured.

``softmax_exp2``: the integer softmax inside QAttentionKV (ops/attention.py), whose score scale is
known only at run time: exp by a 1/256-octave table of 2^-x, Q15 probabilities.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .intmath import scale_apply
from .quant import act_range, rshift_round
from .registry import prod, register

Q_EXP = 15          # table scale: e of the row maximum is 2^15
MAX_L = 65535       # sum < L·2^15 < 2^31


def view(node, shape) -> tuple[int, int, int]:
    """(outer, L, inner) of the reduction."""
    rank = len(shape)
    legacy = node.attr("_opset", 13) < 13
    axis = node.attr("axis", 1 if legacy else -1)
    if not -rank <= axis < rank:
        raise TinydeployError(f"node {node.name} ({node.op}): axis {axis} out of range for rank {rank}")
    axis %= rank
    if legacy:
        return prod(shape[:axis]), prod(shape[axis:]), 1
    return prod(shape[:axis]), int(shape[axis]), prod(shape[axis + 1:])


def _emit(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    if x.dtype != np.float32:
        raise TinydeployError(f"node {node.name} ({node.op}): only float32 has a C kernel")
    o, L, i = view(node, x.shape)
    return (f"td_softmax_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {o}, {L}, {i}, "
            f"{int(node.op == 'LogSoftmax')});")


def _float(node, graph, args, log):
    x = args[0].astype(np.float32)
    o, L, i = view(node, x.shape)
    v = x.reshape(o, L, i)
    d = v - v.max(axis=1, keepdims=True)
    e = np.exp(d)
    s = e.sum(axis=1, keepdims=True, dtype=np.float32)
    y = d - np.log(s) if log else e * (np.float32(1) / s)
    return [y.astype(np.float32).reshape(x.shape)]


def _tiling(node, graph):
    """Whole rows (the reduction axis), tiles of the rows and of the axes after it."""
    from .tiles import rowwise
    table = [(node.name + "_exp", 2 * len(node.attrs["table"]))] if node.op == "QSoftmax" else []
    return rowwise(node, graph, view(node, graph.tensors[node.inputs[0]].shape), consts=table)


@register("Softmax", emit=_emit, inplace=True, header="softmax.h", lower=lambda m, g: lower_softmax(m, g),
          tiling=_tiling)
def softmax(node, graph, args):
    return _float(node, graph, args, log=False)


@register("LogSoftmax", emit=_emit, inplace=True, header="softmax.h", tiling=_tiling)
def log_softmax(node, graph, args):
    return _float(node, graph, args, log=True)


# ---- int8 ---------------------------------------------------------------------------------------
def exp_table(sx: float) -> np.ndarray:
    return np.rint(np.exp(-np.float64(sx) * np.arange(256)) * 2**Q_EXP).astype(np.uint16)


def reciprocal_constant(sy: float) -> tuple[int, int] | None:
    """(C, Sc) with C = round(2^Sc / sy) in [2^31, 2^32), or None if no shift in [1, 46] fits."""
    _, e = np.frexp(1.0 / np.float64(sy))       # 1/sy = f·2^e, f in [0.5, 1)
    sc = 32 - int(e)
    c = int(np.rint(np.ldexp(1.0 / np.float64(sy), sc)))
    if c >= 2**32:
        c, sc = c >> 1, sc - 1
    if not 1 <= sc <= 46:
        return None
    return c, sc


def lower_softmax(m, graph):
    x = m.ins[0]
    if x is None or x.q.per_channel or graph.tensors[x.name].dtype != np.int8:
        return None
    _, L, _ = view(m.node, graph.tensors[x.name].shape)
    rc = reciprocal_constant(float(m.out_q.scale[0]))
    if rc is None or L > MAX_L:
        return None
    lo, hi = act_range(m)
    attrs = {k: v for k, v in m.node.attrs.items() if k in ("axis", "_opset")}
    attrs.update(table=exp_table(float(x.q.scale[0])), C=rc[0], Sc=rc[1], zy=int(m.out_q.zero_point[0]), lo=lo, hi=hi)
    return [Node("QSoftmax", m.node.name, [x.name], [m.out], attrs)]


def _emit_q(node, graph, ctx) -> str:
    a = node.attrs
    x = graph.tensors[node.inputs[0]]
    o, L, i = view(node, x.shape)
    table = ctx.array(node.name + "_exp", np.asarray(a["table"], np.uint16))
    return (f"td_softmax_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {o}, {L}, {i}, {table}, "
            f"{a['C']}u, {a['Sc']}, {a['zy']}, {a['lo']}, {a['hi']});")


@register("QSoftmax", emit=_emit_q, inplace=True, header="softmax.h", tiling=_tiling)
def qsoftmax(node, graph, args):
    a = node.attrs
    x = args[0]
    o, L, i = view(node, x.shape)
    v = x.reshape(o, L, i).astype(np.int64)
    e = np.asarray(a["table"], np.uint64)[v.max(axis=1, keepdims=True) - v]
    s = e.sum(axis=1, keepdims=True)
    _, bits = np.frexp(s.astype(np.float64))            # exact: s < 2^31
    r = np.maximum(bits - 16, 0).astype(np.uint64)
    inv = np.uint64(a["C"]) // (s >> r)
    sh = np.uint64(a["Sc"]) + r
    y = ((e * inv + (np.uint64(1) << (sh - np.uint64(1)))) >> sh).astype(np.int64) + a["zy"]
    return [np.clip(y, a["lo"], a["hi"]).astype(np.int8).reshape(x.shape)]


# ---- integer softmax with a run-time score scale (QAttentionKV) -----------------------------------
EXP_FRAC_BITS = 8  # exponent resolution of the exp2 table: 1/256 octave
EXP2_Q15 = np.array([math.floor(32768 * 2.0 ** (-j / 256) + 0.5) for j in range(256)], np.int64)


def exp2_neg_q15(e8):
    """2^(-e8 / 256) in Q15 for integer e8 >= 0: EXP2_Q15[e8 & 255] >> (e8 >> 8), 0 beyond 2^-15."""
    e8 = np.asarray(e8, np.int64)
    n = e8 >> EXP_FRAC_BITS
    return np.where(n > 15, 0, EXP2_Q15[e8 & 255] >> np.minimum(n, 15))


def softmax_exp2(acc, visible, G, bits: int):
    """Softmax over the last axis of integer scores whose unit, times 256 log2(e), is the run-time
    scale G = (m, e), each broadcasting against acc[..., :1]:
        e8 = requant(max - acc, G)          (1/256 octaves below the maximum of the visible scores)
        w  = 2^(-e8 / 256) in Q15           (EXP2_Q15; sum w < 2^25 for up to 1024 scores)
        p  = rshift_round(w (2^46 // sum w), 47 - bits)   in Q(bits - 1)
    Positions where ``visible`` is False get p = 0. C: runtime/kernels/attention.h."""
    acc = np.asarray(acc, np.int64)
    amax = np.where(visible, acc, np.iinfo(np.int64).min).max(axis=-1, keepdims=True)
    d = np.where(visible, amax - acc, 0)
    w = np.where(visible, exp2_neg_q15(scale_apply(d, G)), 0)
    recip = (np.int64(1) << 46) // w.sum(axis=-1, keepdims=True)
    return rshift_round(w * recip, 46 - (bits - 1))
