"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (float32, runtime/kernels/loss.h): the
per-element loss -w[t]·logp[n, t, d], reduced by none / sum / mean (Σ w·loss / Σ w, ignored
elements excluded). SCE computes log-softmax over axis 1 on the fly (max-shifted), optionally
writing it as its second output."""
from __future__ import annotations

import numpy as np

from ..codegen.ctext import c_literal
from ..errors import TinydeployError
from .registry import prod, register

RED = {"none": 0, "sum": 1, "mean": 2}


def _log_softmax(x):
    m = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - m)
    return np.log(e / np.sum(e, axis=1, keepdims=True))


def _loss(node, lp, t, w):
    N, C = lp.shape[:2]
    lp3, t2 = lp.reshape(N, C, -1), t.reshape(N, -1).astype(np.int64)
    ii = node.attr("ignore_index")
    valid = (t2 >= 0) & (t2 < C) & (True if ii is None else t2 != ii)
    k = np.where(valid, t2, 0)
    picked = np.take_along_axis(lp3, k[:, None, :], axis=1)[:, 0, :]
    wk = (np.ones_like(picked) if w is None else w[k]) * valid
    loss = (-picked * wk).astype(lp.dtype)
    red = node.attr("reduction", "mean")
    if red == "none":
        return loss.reshape(t.shape)
    if red == "sum":
        return np.array(loss.sum(), lp.dtype)
    return np.array(loss.sum() / wk.sum(), lp.dtype)


def _emit(node, graph, ctx, softmax):
    x, t = node.inputs[0], node.inputs[1]
    w = node.inputs[2] if len(node.inputs) > 2 else ""
    if graph.tensors[x].dtype != np.float32:
        raise TinydeployError(f"node {node.name} ({node.op}): only float32 has a C kernel")
    dt = np.dtype(graph.tensors[t].dtype)
    if dt not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise TinydeployError(f"node {node.name} ({node.op}): targets must be int32 or int64")
    shape = graph.tensors[x].shape
    N, C = shape[:2]
    D = prod(shape[2:])
    ii = node.attr("ignore_index")
    lp = node.outputs[1] if softmax and len(node.outputs) > 1 and node.outputs[1] else ""
    return (f"td_loss_f32_i{8 * dt.itemsize}({ctx.ptr(x)}, {int(softmax)}, {ctx.ptr(t)}, {ctx.ptr(w)}, "
            f"{ctx.ptr(node.outputs[0])}, {ctx.ptr(lp)}, {N}, {C}, {D}, {c_literal(ii or 0, np.int64)}, "
            f"{int(ii is not None)}, {RED[node.attr('reduction', 'mean')]});")


@register("NegativeLogLikelihoodLoss", emit=lambda n, g, c: _emit(n, g, c, False), header="loss.h")
def nll_loss(node, graph, args):
    w = args[2] if len(args) > 2 else None
    return [_loss(node, np.asarray(args[0]), np.asarray(args[1]), w)]


@register("SoftmaxCrossEntropyLoss", emit=lambda n, g, c: _emit(n, g, c, True), header="loss.h")
def sce_loss(node, graph, args):
    x = np.asarray(args[0])
    with np.errstate(all="ignore"):
        lp = _log_softmax(x).astype(x.dtype)
    w = args[2] if len(args) > 2 else None
    return [_loss(node, lp, np.asarray(args[1]), w), lp]
