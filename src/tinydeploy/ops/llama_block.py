"""Fused llama layer halves over row blocks (graphs built by ``models/llama/graph.py``).

``LlamaAttnBlock`` (x += wo(attention(rope(wq/wk/wv(rmsnorm(x)))))) and ``LlamaFfnBlock``
(x += w2(swiglu(w1(rmsnorm(x)), w3(rmsnorm(x))))) update the int16 residual stream x [T, D] in place
and run the chain on blocks of ``block`` rows, so a prefill of T rows needs only x plus one scratch
of ``block`` rows (``tdl_blk_scratch``, static, shared by every block node) instead of all of
q/k/v/h1/h3/g for T rows. Every step is row-wise except attention, which is causal: block b stores
its K/V rows in the cache before attending, and earlier blocks' rows are already there, so the
result is the same to the bit as the unfused ops (whose goldens these goldens chain).
"""
from __future__ import annotations

import numpy as np

from ..ir import Node
from . import llama as L
from .registry import register

H = "llama.h"
SCRATCH = "tdl_blk_scratch"


def _al(n: int) -> int:
    return (n + 15) & ~15


def attn_scratch(R: int, D: int, KV: int) -> list[tuple[str, int]]:
    """(name, bytes) of the attention half's scratch for R rows, in order; o reuses q."""
    return [("s8", R * D), ("sF", R * 8), ("q", R * D * 2), ("k", R * KV * 2), ("v", R * KV * 2),
            ("a8", R * D), ("aF", R * 8)]


def ffn_scratch(R: int, D: int, Hd: int) -> list[tuple[str, int]]:
    """(name, bytes) of the FFN half's scratch for R rows; the w2 output f reuses h1."""
    return [("s8", R * D), ("sF", R * 8), ("h1", R * Hd * 2), ("h3", R * Hd * 2), ("g8", R * Hd), ("gF", R * 8)]


def scratch_bytes(parts) -> int:
    return sum(_al(b) for _, b in parts)


def _ptrs(parts, types) -> dict[str, str]:
    out, off = {}, 0
    for name, b in parts:
        out[name] = f"(({types[name]} *)((char *){SCRATCH} + {off}))"
        off += _al(b)
    return out


def _sub(op, **attrs):
    return Node(op, op, [], [], attrs)


def _w_macs(node, graph):
    T = graph.tensors[node.outputs[0]].shape[0]
    return T * sum(graph.tensors[i].shape[0] * graph.tensors[i].shape[1]
                   for i in node.inputs if graph.tensors[i].dtype == np.int8 and graph.tensors[i].is_const)


def _decl(ctx, node):
    decl = f"static int64_t {SCRATCH}[{(node.attrs['scratch_bytes'] + 7) // 8}];"
    if decl not in ctx.decls:
        ctx.decls.append(decl)


def _head(node, g, ctx):
    x, D = ctx.ptr(node.outputs[0]), g.tensors[node.inputs[0]].shape[1]
    R = node.attrs["block"]
    return x, D, R, (L._copy_in(node, g, ctx) +
                     f"for (int r_ = 0; r_ < {L._n(ctx, node, 2)}; r_ += {R}) {{\n"
                     f"    int b_ = {L._n(ctx, node, 2)} - r_ < {R} ? {L._n(ctx, node, 2)} - r_ : {R};\n"
                     f"    int16_t *x_ = {x} + r_ * {D};\n")


def _lin(ctx, g, x8, F, w, mw, c, bits, out):
    r, cl = g.tensors[w].shape
    return (f"    tdl_linear_q8({x8}, {F}, b_, {ctx.ptr(w)}, {ctx.ptr(mw)}, {r}, {cl}, {L._sc(c)}, {bits}, "
            f"{out}, 0);\n")


def _norm(ctx, node, D, G, s8, sF):
    a = node.attrs
    return (f"    tdl_rmsnorm_q8(x_, b_, {D}, {ctx.ptr(G)}, INT64_C({a['epsn']}), {L._sc(a['c_norm'])}, "
            f"{a['qmax']}, {s8}, {sF});\n")


def _attn_emit(node, g, ctx):
    _decl(ctx, node)
    a, i = node.attrs, node.inputs
    x, D, R, s = _head(node, g, ctx)
    KV, S = g.tensors[i[6]].shape[0], g.tensors[i[12]].shape[1]
    p = _ptrs(attn_scratch(R, D, KV), dict(s8="int8_t", sF="int32_t", q="int16_t", k="int16_t", v="int16_t",
                                         a8="int8_t", aF="int32_t"))
    l = a["layer"]
    s += f"    int32_t p_ = {L._n(ctx, node, 1)} + r_;\n"
    s += _norm(ctx, node, D, i[3], p["s8"], p["sF"])
    s += _lin(ctx, g, p["s8"], p["sF"], i[4], i[5], a["c_q"], 16, p["q"])
    s += _lin(ctx, g, p["s8"], p["sF"], i[6], i[7], a["c_k"], 16, p["k"])
    s += _lin(ctx, g, p["s8"], p["sF"], i[8], i[9], a["c_v"], 16, p["v"])
    s += f"    tdl_rope({p['q']}, p_, b_, {D}, {a['head_size']}, {ctx.ptr(i[10])}, {ctx.ptr(i[11])});\n"
    s += f"    tdl_rope({p['k']}, p_, b_, {KV}, {a['head_size']}, {ctx.ptr(i[10])}, {ctx.ptr(i[11])});\n"
    s += (f"    tdl_attention({p['q']}, {p['k']}, {p['v']}, p_, b_, {D}, {KV}, {a['head_size']}, "
          f"{ctx.ptr(i[12])} + {l * S * KV}, {ctx.ptr(i[13])} + {l * S * KV}, {ctx.ptr(i[14])}, "
          f"{ctx.ptr(i[15])}, {ctx.ptr(i[16])}, {ctx.ptr(i[17])}, {ctx.ptr(i[18])}, {L._sc(a['c_score'])}, "
          f"{46 - (a['softmax_bits'] - 1)}, {L._sc(a['c_dyn'])}, {a['qmax']}, {L.ATT_SCRATCH}, {p['a8']}, "
          f"{p['aF']});\n")
    s += _lin(ctx, g, p["a8"], p["aF"], i[19], i[20], a["c_o"], a["bits"], p["q"])
    s += f"    tdl_residual_add(x_, {p['q']}, b_, {D}, {a['bits']});\n}}"
    L.att_scratch_decl(ctx, S)
    return s


@register("LlamaAttnBlock", header=H, inplace=True, emit=_attn_emit, macs=_w_macs)
def attn_block(node, graph, args):
    """inputs: x, pos, n, g_att, wq w8/mw, wk w8/mw, wv w8/mw, cos, sin, kcache, vcache, kq, vq, mk, mv,
    exp2, wo w8/mw; output x'."""
    x, pos, n, G, wq, mq, wk, mk_, wv, mv_, cos, sin, kc, vc, kq, vq, mk, mv, exp2, wo, mo = args
    a = node.attrs
    xb, F = L.rmsnorm(_sub("n", epsn=a["epsn"], c=a["c_norm"], qmax=a["qmax"]), None, [x, n, G])
    q, = L.linear(_sub("q", c=a["c_q"], bits=16), None, [xb, F, n, wq, mq])
    k, = L.linear(_sub("k", c=a["c_k"], bits=16), None, [xb, F, n, wk, mk_])
    v, = L.linear(_sub("v", c=a["c_v"], bits=16), None, [xb, F, n, wv, mv_])
    rp = _sub("r", head_size=a["head_size"])
    q, = L.rope(rp, None, [q, pos, n, cos, sin])
    k, = L.rope(rp, None, [k, pos, n, cos, sin])
    att = _sub("a", **{k_: a[k_] for k_ in ("layer", "c_score", "c_dyn", "head_size", "kv_mul",
                                            "softmax_bits", "qmax")})
    a8, aF = L.attention(att, None, [q, k, v, pos, n, kc, vc, kq, vq, mk, mv, exp2])
    o, = L.linear(_sub("o", c=a["c_o"], bits=a["bits"]), None, [a8, aF, n, wo, mo])
    return L.residual_add(_sub("x", bits=a["bits"]), None, [x, o, n])


def _ffn_emit(node, g, ctx):
    _decl(ctx, node)
    a, i = node.attrs, node.inputs
    x, D, R, s = _head(node, g, ctx)
    Hd = g.tensors[i[4]].shape[0]
    p = _ptrs(ffn_scratch(R, D, Hd), dict(s8="int8_t", sF="int32_t", h1="int16_t", h3="int16_t", g8="int8_t",
                                        gF="int32_t"))
    s += _norm(ctx, node, D, i[3], p["s8"], p["sF"])
    s += _lin(ctx, g, p["s8"], p["sF"], i[4], i[5], a["c_1"], 16, p["h1"])
    s += _lin(ctx, g, p["s8"], p["sF"], i[6], i[7], a["c_3"], 16, p["h3"])
    s += (f"    tdl_swiglu_q8({p['h1']}, {p['h3']}, b_, {Hd}, {a['frac_bits']}, {ctx.ptr(i[10])}, "
          f"{L._sc(a['c_dyn'])}, {a['qmax']}, {p['g8']}, {p['gF']});\n")
    s += _lin(ctx, g, p["g8"], p["gF"], i[8], i[9], a["c_2"], a["bits"], p["h1"])
    s += f"    tdl_residual_add(x_, {p['h1']}, b_, {D}, {a['bits']});\n}}"
    return s


@register("LlamaFfnBlock", header=H, inplace=True, emit=_ffn_emit, macs=_w_macs)
def ffn_block(node, graph, args):
    """inputs: x, pos (unused), n, g_ffn, w1 w8/mw, w3 w8/mw, w2 w8/mw, sigmoid table; output x'."""
    x, _pos, n, G, w1, m1, w3, m3, w2, m2, sig = args
    a = node.attrs
    xb, F = L.rmsnorm(_sub("n", epsn=a["epsn"], c=a["c_norm"], qmax=a["qmax"]), None, [x, n, G])
    h1, = L.linear(_sub("h1", c=a["c_1"], bits=16), None, [xb, F, n, w1, m1])
    h3, = L.linear(_sub("h3", c=a["c_3"], bits=16), None, [xb, F, n, w3, m3])
    g8, gF = L.swiglu(_sub("s", frac_bits=a["frac_bits"], c_dyn=a["c_dyn"], qmax=a["qmax"]), None, [h1, h3, n, sig])
    f, = L.linear(_sub("f", c=a["c_2"], bits=a["bits"]), None, [g8, gF, n, w2, m2])
    return L.residual_add(_sub("x", bits=a["bits"]), None, [x, f, n])
