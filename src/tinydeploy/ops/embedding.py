"""QEmbedding: rows of an int8 table with per-group scales, looked up by token id.

    inputs  tokens int32 [T], n (row count, optional), w8 int8 [V, D], mw int16 [ceil(V D / 32)]
    attrs   c = (m, e): the group unit 2^-Ew over the output scale; bits (16)
    x_t     = sat_bits(requant(w8[tok_t] * mw_g, c))        g: the group of each element

The same table format as QLinearDyn's weights (ops/linear.py), so a language model's classifier can
share the embedding. Row-wise; C kernel: runtime/kernels/embedding.h.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from .intmath import I64, sat, scale_apply
from .linear import GROUP, c_scale, cached_weight
from .registry import register


def embed(W_eff, tokens, c, bits: int):
    """Rows of the effective table (w8 * mw) at the output scale: sat(apply(W_eff[tokens], c))."""
    return sat(scale_apply(W_eff[np.asarray(tokens, I64)].astype(I64), c), bits)


def _emit(node, g, ctx):
    tok, _, w8, mw = node.inputs
    if node.attrs.get("group", GROUP) != GROUP:
        raise TinydeployError(f"node {node.name} (QEmbedding): the C kernel takes groups of {GROUP}")
    return (f"td_embedding_q8g({ctx.ptr(tok)}, {ctx.rows(node)}, {ctx.ptr(w8)}, {ctx.ptr(mw)}, "
            f"{g.tensors[w8].shape[1]}, {c_scale(node.attrs['c'])}, {node.attrs['bits']}, "
            f"{ctx.ptr(node.outputs[0])});")


@register("QEmbedding", emit=_emit, rows=1, header="embedding.h")
def qembedding(node, graph, args):
    tok, _, w8, mw = args
    a = node.attrs
    return [embed(cached_weight(w8, mw, a.get("group", GROUP)), tok, a["c"], a["bits"]).astype(np.int16)]
