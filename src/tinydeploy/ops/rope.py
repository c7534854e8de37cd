"""QRoPE: rotary position embedding of int16 rows by Q14 tables, in place.

    inputs  v int16 [T, C] (C = heads x head_size), pos (position of row 0), n (row count, optional),
            cos, sin int16 [S, head_size / 2] (``tables``: Q14, round half up)
    attrs   head_size
    for each pair (a, b) = (v[2i], v[2i+1]) of a head, angle of row t at position p = pos + t:
    a' = sat16(rshift_round(a cos - b sin, 14)),  b' = sat16(rshift_round(a sin + b cos, 14))

Pairs are consecutive elements (llama2.c's layout). Row-wise; C kernel: runtime/kernels/rope.h.
"""
from __future__ import annotations

import numpy as np

from .intmath import I64, sat
from .quant import rshift_round
from .registry import register

BITS = 14


def tables(head_size: int, seq_len: int, theta: float = 10000.0):
    """cos/sin [seq_len, head_size/2] in Q14 (round half up), frequency 1/theta^(2i/head_size)."""
    freq = 1.0 / theta ** (np.arange(0, head_size, 2) / head_size)
    ang = np.arange(seq_len)[:, None] * freq[None, :]
    return (np.floor(np.cos(ang) * 2**BITS + 0.5).astype(I64),
            np.floor(np.sin(ang) * 2**BITS + 0.5).astype(I64))


def rope(v, cos, sin, head_size: int):
    """Rotate consecutive pairs of each head: v [T, n*head_size], cos/sin [T, head_size/2] (the
    rows' positions), saturated to int16."""
    T = v.shape[0]
    p = np.asarray(v, I64).reshape(T, -1, head_size // 2, 2)
    c, s = cos[:, None, :], sin[:, None, :]
    a = rshift_round(p[..., 0] * c - p[..., 1] * s, BITS)
    b = rshift_round(p[..., 0] * s + p[..., 1] * c, BITS)
    return sat(np.stack([a, b], axis=-1).reshape(v.shape), 16)


def _emit(node, g, ctx):
    v, _, _, cos, sin = node.inputs
    out = ctx.ptr(node.outputs[0])
    return (ctx.copy_in(node) + f"td_rope({out}, {ctx.pos(node)}, {ctx.rows(node)}, {g.tensors[v].shape[1]}, "
            f"{node.attrs['head_size']}, {ctx.ptr(cos)}, {ctx.ptr(sin)});")


@register("QRoPE", emit=_emit, inplace=True, rows=2, pos=1, header="rope.h")
def qrope(node, graph, args):
    v, pos, _, cos, sin = args
    T, p = v.shape[0], int(pos[0])
    end = min(p + T, len(cos))  # rows past the table are padding (never computed by C)
    c, s = np.zeros((T, cos.shape[1]), I64), np.zeros((T, cos.shape[1]), I64)
    c[:end - p], s[:end - p] = cos[p:end], sin[p:end]
    return [rope(v, c, s, node.attrs["head_size"]).astype(np.int16)]
