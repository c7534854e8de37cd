"""MatMulW: int8 activations times constant int8 weights, int32 out, with an optional int32 bias:

    y[.., m, n] = bias[n] + sum_k a[.., m, k] w[n, k]        (w stored transposed: [N, K])

What passes/integerize.py makes of a float32 MatMul (+ bias Add) whose values are integers (Deeploy's
linear layers). The sums are exact in int32 there (its ranges are proven), so no wrap-around arises.
Kernel td_mmw_s8 (runtime/kernels/matmul_w.h): one input row streamed past 8 weight rows, ~3.1
instructions per MAC on RV32IMC against ~7 for the strided MatMulInteger loops.
"""
from __future__ import annotations

import numpy as np

from .registry import prod, register


def _dims(node, graph):
    a, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    return prod(a.shape[:-1]), w.shape[0], w.shape[1]   # M (all leading axes), N, K


def _emit(node, graph, ctx) -> str:
    M, N, K = _dims(node, graph)
    bias = ctx.ptr(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    return f"td_mmw_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.inputs[1])}, {bias}, {ctx.ptr(node.outputs[0])}, " \
           f"{M}, {N}, {K});"


@register("MatMulW", emit=_emit, header="matmul_w.h",
          macs=lambda node, graph: prod(_dims(node, graph)))
def matmul_w(node, graph, args):
    a, w = np.asarray(args[0], np.int64), np.asarray(args[1], np.int64)
    y = a @ w.T
    if len(args) > 2 and args[2] is not None:
        y = y + np.asarray(args[2], np.int64)
    return [y.astype(np.int32)]
