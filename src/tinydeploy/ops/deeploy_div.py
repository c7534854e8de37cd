"""Deeploy's IntegerDiv, RQIntegerDiv and IntegerMean (docs/deeploy_dialect.md), with the arithmetic
of its C kernels and templates (runtime/kernels/deeploy.h); types as in ops/deeploy.py.

IntegerDiv(a, b; Delta, eps, eta)   (Generic/src/Div_s32.c)
    y = (int32)((N + sgn(N)·(D >> 1)) / D),  N = Delta·eta·a, D = eta·b + eps    int64, C division
    b broadcasts against a; Deeploy's kernel walks a as [outer, mid, inner] with b [outer, 1, inner].
RQIntegerDiv(a, b, mul, add, shift; ...)   (Generic/src/RQDiv_s8.c): the same y, then
    clamp((y·mul + add + 2^(shift-1)) >> shift, -128, 127) in int32.
IntegerMean(x; axes, keepdims)   (Generic/Templates/ReduceMeanTemplate.py)
    S = Σx over axes (int32), n = the reduced count;  y = (S + n/2) >> log2(n) when keepdims = 0 and n
    is a power of two > 1, else (S + sgn(S)·(n >> 1)) / n (half away from zero), sgn(0) = +1.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from .deeploy import call, dialect_op, int_attr, int_const, requant_shift, result, scalar, to_i32, wrap32
from .deeploy_norm import c_div
from .registry import prod


# ---- IntegerDiv, RQIntegerDiv -------------------------------------------------------------------------
def _div_params(node):
    return tuple(int_attr(node, k) for k in ("Delta", "eps", "eta"))


def integer_div(a, b, delta, eps, eta):
    N = wrap32(delta * eta) * a
    D = eta * b + eps
    sg = np.where(N >= 0, 1, -1)
    return wrap32(np.where(D == 0, 0, c_div(N + sg * (D >> 1), np.where(D == 0, 1, D))))


def div_view(node, ashape, bshape) -> tuple[int, int, int]:
    """(outer, mid, inner): a is [outer, mid, inner] and b [outer, 1, inner] (numpy broadcasting
    over one run of axes where b is 1), the only form Deeploy's kernel walks."""
    if len(bshape) < len(ashape):
        bshape = (1,) * (len(ashape) - len(bshape)) + tuple(bshape)
    diff = [k for k, (x, y) in enumerate(zip(ashape, bshape)) if x != y]
    if any(bshape[k] != 1 for k in diff) or (diff and diff != list(range(diff[0], diff[-1] + 1))):
        raise TinydeployError(f"node {node.name} ({node.op}): the divisor {list(bshape)} must equal the dividend "
                              f"{list(ashape)} except on one run of axes where it is 1")
    if not diff:
        return 1, 1, prod(ashape)
    return prod(ashape[:diff[0]]), prod(ashape[diff[0]:diff[-1] + 1]), prod(ashape[diff[-1] + 1:])


def _rq_params(node, graph):
    mul, add, sh = (int(int_const(node, graph, i, k).reshape(-1)[0]) for i, k in ((2, "mul"), (3, "add"), (4, "shift")))
    for i in (2, 3, 4):
        if graph.tensors[node.inputs[i]].size != 1:
            raise TinydeployError(f"node {node.name} ({node.op}): input {i} must be one number")
    if not 1 <= sh <= 31:
        raise TinydeployError(f"node {node.name} ({node.op}): shift {sh} must be in [1, 31]")
    return mul, add, sh


def _emit_div(node, graph, ctx) -> str:
    a, b = (graph.tensors[n] for n in node.inputs[:2])
    rq = _rq_params(node, graph) if node.op == "RQIntegerDiv" else (1, 0, 0)
    return call("idiv", node, graph, ctx, *div_view(node, a.shape, b.shape), *_div_params(node), *rq, ins=2)


def _div(node, graph, args):
    a, b = np.asarray(args[0]), np.asarray(args[1])
    if np.dtype(b.dtype).kind != np.dtype(a.dtype).kind:
        raise TinydeployError(f"node {node.name} ({node.op}): dividend and divisor types differ")
    div_view(node, a.shape, b.shape)
    y = np.broadcast_to(integer_div(to_i32(a), to_i32(b), *_div_params(node)), a.shape)
    if node.op == "IntegerDiv":
        return [result(node, a.dtype, y, np.int32)]
    mul, add, sh = (int(to_i32(v).reshape(-1)[0]) for v in args[2:5])
    return [result(node, a.dtype, requant_shift(y, mul, add, sh, -128, 127), np.int8, -128, 127)]


for _op in ("IntegerDiv", "RQIntegerDiv"):
    dialect_op(_op, _emit_div)(_div)


# ---- IntegerMean --------------------------------------------------------------------------------------
def mean_view(node, shape) -> tuple[int, int, int, bool]:
    """(outer, n, inner, keepdims) of a reduction over one run of contiguous axes."""
    axes = node.attrs.get("axes", list(range(len(shape))))
    axes = sorted(int(a) % len(shape) for a in np.asarray(axes).reshape(-1))
    if not axes or axes != list(range(axes[0], axes[-1] + 1)):
        raise TinydeployError(f"node {node.name} ({node.op}): axes {axes} must be one run of contiguous axes")
    return (prod(shape[:axes[0]]), prod(shape[axes[0]:axes[-1] + 1]), prod(shape[axes[-1] + 1:]),
            bool(int(scalar(node, "keepdims", 1))))


def integer_mean(S, n, keepdims):
    if not keepdims and n > 1 and n & (n - 1) == 0:
        return (S + (n >> 1)) >> (n.bit_length() - 1)
    return c_div(S + np.where(S >= 0, 1, -1) * (n >> 1), n)


def _emit_mean(node, graph, ctx) -> str:
    o, n, i, keep = mean_view(node, graph.tensors[node.inputs[0]].shape)
    shift = n.bit_length() - 1 if not keep and n > 1 and n & (n - 1) == 0 else -1
    return call("imean", node, graph, ctx, o, n, i, shift)


@dialect_op("IntegerMean", _emit_mean, inplace=False)
def imean(node, graph, args):
    x = np.asarray(args[0])
    o, n, i, keep = mean_view(node, x.shape)
    S = wrap32(to_i32(x).reshape(o, n, i).sum(axis=1))
    axes = sorted(int(a) % x.ndim for a in np.asarray(node.attrs.get("axes", list(range(x.ndim)))).reshape(-1))
    shape = tuple(1 if k in axes else d for k, d in enumerate(x.shape) if keep or k not in axes)
    return [result(node, x.dtype, integer_mean(S, n, keep).reshape(shape), x.dtype)]
