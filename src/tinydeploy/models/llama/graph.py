"""The integer llama (``IntLlama``'s constants) as tinydeploy IR graphs of the SLM ops in ops/llama.py.

``build_graph(model, rows)``: inputs ``tokens`` int32 [rows], ``pos`` int32 [1] (position of row 0)
and ``n`` int32 [1] (valid rows, 1..rows); output ``logits`` int32 [1, vocab] (Q8 logit units) of
row n - 1. rows = 1 is the decode step; rows = P the prefill of up to P prompt tokens (the C program
runs decode steps through the same graph with n = 1, so the weights exist once). The KV cache is
two state tensors ``kcache`` / ``vcache`` int8 [layers, max_seq, kv_dim].
"""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Node, Tensor
from .intmath import EXP2_Q15, SIGMOID_Q15
from .intmodel import IntLlama


class _B:
    def __init__(self, name: str):
        self.g = Graph(name, {}, [], [], [])
        self.k = 0

    def t(self, name, shape, dtype, state=False):
        self.g.tensors[name] = Tensor(name, tuple(shape), np.dtype(dtype), state=state)
        return name

    def c(self, name, value, dtype):
        value = np.ascontiguousarray(np.asarray(value).astype(dtype))
        self.g.tensors[name] = Tensor(name, value.shape, value.dtype, value)
        return name

    def node(self, op, inputs, outs, **attrs):
        self.k += 1
        self.g.nodes.append(Node(op, f"{op[5:].lower()}_{self.k}", inputs, [o for o, *_ in outs], attrs))
        for o, shape, dtype in outs:
            self.t(o, shape, dtype)
        return [o for o, *_ in outs]


def _pair(m, e) -> np.ndarray:
    return np.stack([np.asarray(m), np.asarray(e)], axis=-1)


def build_graph(model: IntLlama, rows: int) -> Graph:
    m, cfg = model, model.cfg
    if m.d != type(m.d)() or m.d.weight_scales != "group":
        raise ValueError("the compiled llama supports the chosen design only (Design())")
    D, KV, Hd, L, S = cfg.dim, cfg.kv_dim, cfg.hidden_dim, cfg.n_layers, m.seq_len
    b = _B(f"llama_{rows}")
    b.g.inputs = [b.t("tokens", (rows,), np.int32), b.t("pos", (1,), np.int32), b.t("n", (1,), np.int32)]
    kc, vc = b.t("kcache", (L, S, KV), np.int8, True), b.t("vcache", (L, S, KV), np.int8, True)
    emb_w8 = b.c("emb_w8", m.qw["emb"][0], np.int8)
    emb_mw = b.c("emb_mw", m.qw["emb"][1], np.int16)
    cos, sin = b.c("rope_cos", m.cos, np.int16), b.c("rope_sin", m.sin, np.int16)
    exp2, sig = b.c("exp2_q15", EXP2_Q15, np.int32), b.c("sigmoid_q15", SIGMOID_Q15, np.int32)
    x, = b.node("LlamaEmbed", ["tokens", "n", emb_w8, emb_mw], [("x0", (rows, D), np.int16)],
                c=m.c["emb"], bits=m.rb)

    def norm(x, name, l, tag):
        G = b.c(f"g_{name}{l}", m.G[name, l], np.int16)
        return b.node("LlamaRMSNormQ", [x, "n", G], [(f"{tag}8", (rows, D), np.int8), (f"{tag}F", (rows, 2), np.int32)],
                      epsn=int(m.epsn), c=m.c["norm", name, l], qmax=m.qmax)

    def lin(x8, F, name, l, out, bits):
        w8, mw = m.qw[name, l]
        wn, mn = b.c(f"{name}{l}_w8", w8, np.int8), b.c(f"{name}{l}_mw", mw, np.int16)
        return b.node("LlamaLinearQ8", [x8, F, "n", wn, mn], [(out, (rows, w8.shape[0]), np.int16)],
                      c=m.c["out", name, l], bits=bits)[0]

    for l in range(L):
        xb, F = norm(x, "att", l, f"xa{l}_")
        q = lin(xb, F, "wq", l, f"q{l}", 16)
        k = lin(xb, F, "wk", l, f"k{l}", 16)
        v = lin(xb, F, "wv", l, f"v{l}", 16)
        q, = b.node("LlamaRope", [q, "pos", "n", cos, sin], [(f"qr{l}", (rows, D), np.int16)], head_size=cfg.head_size)
        k, = b.node("LlamaRope", [k, "pos", "n", cos, sin], [(f"kr{l}", (rows, KV), np.int16)], head_size=cfg.head_size)
        consts = [b.c(f"kq{l}", _pair(*m.kq[l]), np.int32), b.c(f"vq{l}", _pair(*m.vq[l]), np.int32),
                  b.c(f"mk{l}", m.mk[l], np.int16), b.c(f"mv{l}", m.mv[l], np.int16), exp2]
        a8, aF = b.node("LlamaAttention", [q, k, v, "pos", "n", kc, vc] + consts,
                        [(f"a{l}_8", (rows, D), np.int8), (f"a{l}_F", (rows, 2), np.int32)],
                        layer=l, c_score=m.c["score", l], c_dyn=m.c["dyn", "wo_in", l],
                        head_size=cfg.head_size, kv_mul=cfg.kv_mul, softmax_bits=m.d.softmax_bits, qmax=m.qmax)
        o = lin(a8, aF, "wo", l, f"o{l}", m.rb)
        x, = b.node("LlamaResidualAdd", [x, o, "n"], [(f"xm{l}", (rows, D), np.int16)], bits=m.rb)
        xb, F = norm(x, "ffn", l, f"xf{l}_")
        h1 = lin(xb, F, "w1", l, f"h1_{l}", 16)
        h3 = lin(xb, F, "w3", l, f"h3_{l}", 16)
        g8, gF = b.node("LlamaSwiGLU", [h1, h3, "n", sig], [(f"g{l}_8", (rows, Hd), np.int8), (f"g{l}_F", (rows, 2), np.int32)],
                        frac_bits=m.a["h1"][l], c_dyn=m.c["dyn", "w2_in", l], qmax=m.qmax)
        o = lin(g8, gF, "w2", l, f"f{l}", m.rb)
        x, = b.node("LlamaResidualAdd", [x, o, "n"], [(f"x{l + 1}", (rows, D), np.int16)], bits=m.rb)
    x, = b.node("LlamaLastRow", [x, "n"], [("xlast", (1, D), np.int16)])
    G = b.c("g_final", m.G["final", 0], np.int16)
    b.c("n1", np.array([1]), np.int32)
    xb, F = b.node("LlamaRMSNormQ", [x, "n1", G], [("xo8", (1, D), np.int8), ("xoF", (1, 2), np.int32)],
                   epsn=int(m.epsn), c=m.c["norm", "final", 0], qmax=m.qmax)
    b.node("LlamaLinearQ8", [xb, F, "n1", emb_w8, emb_mw], [("logits", (1, cfg.vocab_size), np.int32)],
           c=m.c["logits"], bits=32)
    b.g.outputs = ["logits"]
    b.g.validate()
    return b.g
