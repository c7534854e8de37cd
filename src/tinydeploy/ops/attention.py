"""QAttentionKV: causal (grouped-query) attention of int16 rows over an int8 KV cache kept as state.

    inputs  q int16 [T, D], k, v int16 [T, KV] (rotated keys, values), pos (position of row 0),
            n (row count), kcache, vcache int8 [L, S, KV] (state: layer ``layer``'s rows, updated
            in place), kq, vq int32 [KV, 2] (per-channel scales into the cache), mk, mv int16 [KV]
            (the cache scales' mantissas), exp2 int32 [256] (softmax.EXP2_Q15)
    attrs   layer, head_size, c_score, softmax_bits, c (output unit), qmax
    outputs a8 int8 [T, D], F int32 [T, 2]: the attention output with its run-time row scale

Per row t at position p = pos + t: the cache rows p get sat8(requant(k, kq)), sat8(requant(v, vq));
then per head h (sharing KV head h // (D / KV)):
    u = q_h * mk, (u16, Mu) = quantize_vec(u, 32767)      scores acc_s = u16 . k8_s, s <= p
    p_s = softmax_exp2(acc, Mu * c_score)                   Q(softmax_bits - 1) (ops/softmax.py)
    a_h = (sum_s p_s v8_s) * mv                             |a| < 2^37
and (a8, F) = quantize_rows(a, c, qmax). Causal row-wise: row t reads cache rows < p that earlier
rows (or earlier calls) wrote, so rows can run in blocks as long as they run in order. The cost
depends on the run-time position, so MACs are reported as 0. C: runtime/kernels/attention.h, with
one row of scores per core as scratch (heads or rows across the cores). Where the caches live in a
far memory (the cluster's L2: `kv_caches`), td_attention_kv_l2 works on one layer's rows brought
into a near window by DMA ahead of the layer and sends the new rows back.
"""
from __future__ import annotations

import numpy as np

from ..codegen.ctext import scratch_layout
from ..errors import TinydeployError
from .intmath import I64, int_bmm, quantize_rows, quantize_vec, sat, scale_apply, scale_mul, scale_norm
from .linear import c_scale, row_scales, scale_tensor
from .registry import register
from .softmax import softmax_exp2

MAX_SEQ = 1 << 16  # softmax weights (<= 2^15 each) sum in 32 bits


def kv_store(k, v, kq, vq):
    """int8 cache rows of rotated keys and values (per-channel scales (m [KV], e [KV]))."""
    return sat(scale_apply(k, kq), 8), sat(scale_apply(v, vq), 8)


def attention(q, k8, v8, start_pos: int, mk, mv, c_score, head_size: int, softmax_bits: int):
    """Rows q [T, D] at positions start_pos.. over the caches k8, v8 [end, KV] (already holding
    these rows) -> the output a [T, D] (int64) before its per-row quantization."""
    T, end = q.shape[0], k8.shape[0]
    hs = head_size
    nkv = k8.shape[1] // hs
    km = q.shape[1] // k8.shape[1]
    nh = nkv * km
    visible = np.arange(end)[None, :] <= (start_pos + np.arange(T))[:, None]
    kc, vc = k8.reshape(end, nkv, hs), v8.reshape(end, nkv, hs)
    u = np.asarray(q, I64).reshape(T, nh, hs) * np.repeat(np.asarray(mk, I64).reshape(nkv, hs), km, axis=0)
    u16, Mu = quantize_vec(u, 32767)
    G = scale_mul(scale_norm(Mu, 0), c_score)  # [T, nh]
    kh = np.repeat(kc, km, axis=1).transpose(1, 2, 0)  # [nh, hs, end]
    acc = int_bmm(u16.transpose(1, 0, 2), kh)  # [nh, T, end]
    p = softmax_exp2(acc, visible, (G[0].T[..., None], G[1].T[..., None]), softmax_bits)
    vh = np.repeat(vc, km, axis=1).transpose(1, 0, 2)  # [nh, end, hs]
    o = int_bmm(p, vh)  # [nh, T, hs], |o| < 2^22
    a = o.transpose(1, 0, 2) * np.repeat(np.asarray(mv, I64).reshape(nkv, hs), km, axis=0)
    return a.reshape(T, nh * hs)


def _scratch_pieces(node, g, kernels):
    # per core one head's scores, one per cache position
    return [(np.int32, kernels.cores * g.tensors[node.inputs[5]].shape[1])]


def _scratch(node, g, kernels) -> int:
    return scratch_layout(_scratch_pieces(node, g, kernels))[1]


def _emit(node, g, ctx):
    q, k, v, _, _, kc, vc, kq, vq, mk, mv, exp2 = node.inputs
    a = node.attrs
    D, KV = g.tensors[q].shape[1], g.tensors[k].shape[1]
    S = g.tensors[kc].shape[1]
    if S > MAX_SEQ:
        raise TinydeployError(f"node {node.name} (QAttentionKV): a cache of {S} positions; the C kernel sums "
                              f"softmax weights in 32 bits, up to {MAX_SEQ} positions")
    off = a["layer"] * S * KV
    kc_, vc_ = f"{ctx.ptr(kc)} + {off}", f"{ctx.ptr(vc)} + {off}"
    args = (f"{ctx.ptr(q)}, {ctx.ptr(k)}, {ctx.ptr(v)}, {ctx.pos(node)}, {ctx.rows(node)}, {D}, {KV}, "
            f"{a['head_size']}, {kc_}, {vc_}, {ctx.ptr(kq)}, {ctx.ptr(vq)}, {ctx.ptr(mk)}, {ctx.ptr(mv)}, "
            f"{ctx.ptr(exp2)}, {c_scale(a['c_score'])}, {46 - (a['softmax_bits'] - 1)}, {c_scale(a['c'])}, "
            f"{a['qmax']}, {ctx.scratch(_scratch_pieces(node, g, ctx.kernels))[0]}")
    outs = f"{ctx.ptr(node.outputs[0])}, {ctx.ptr(node.outputs[1])}"
    far = ctx.far(kc, window_bytes(node, g)) if kc in kv_caches(g) else None
    if far is None:
        return f"td_attention_kv({args}, {outs});"
    win, fetched = far   # the caches in far memory: this layer's rows come into the window ahead of it
    ctx.early(f"{fetched} = td_attention_kv_fetch({win}, {kc_}, {vc_}, {ctx.pos(node)}, {KV}, {S});")
    return f"td_attention_kv_l2({args}, {win}, {S}, {fetched}, {outs});"


def kv_caches(g) -> set[str]:
    """State tensors that only QAttentionKV reads (each call one layer's rows): a kernel can stream
    them from a far memory (ClusterContext.far)."""
    users: dict[str, set[str]] = {}
    for n in g.nodes:
        for i in n.inputs:
            if i and g.tensors[i].state:
                users.setdefault(i, set()).add(n.op)
    return {t for t, ops in users.items() if ops == {"QAttentionKV"}}


def window_bytes(node, g) -> int:
    """Near bytes that stream one layer's K and V cache rows: both caches' rows of one layer."""
    _, S, KV = g.tensors[node.inputs[5]].shape
    return 2 * S * KV


@register("QAttentionKV", emit=_emit, rows=4, pos=3, scratch=_scratch, header="attention.h")
def qattention_kv(node, graph, args):
    q, k, v, pos, n, kc, vc, kq, vq, mk, mv, _ = args
    a, l, p, n = node.attrs, node.attrs["layer"], int(pos[0]), int(n[0])
    end = p + n
    kc[l, p:end], vc[l, p:end] = kv_store(k[:n], v[:n], row_scales(kq), row_scales(vq))
    att = attention(q[:n], kc[l, :end].astype(I64), vc[l, :end].astype(I64), p, mk, mv, a["c_score"],
                    a["head_size"], a["softmax_bits"])
    a8, F = quantize_rows(att, a["c"], a["qmax"])
    T, D = q.shape
    out8, outF = np.zeros((T, D), np.int8), np.zeros((T, 2), np.int32)
    out8[:n], outF[:n] = a8, scale_tensor(F)
    return [out8, outF]
