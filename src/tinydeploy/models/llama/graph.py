"""The integer llama (``IntLlama``'s constants) as a tinydeploy IR graph of generic integer ops.

``build_graph(model, rows)``: inputs ``tokens`` int32 [rows], ``pos`` int32 [1] (position of row 0)
and ``n`` int32 [1] (valid rows, 1..rows); output ``logits`` int32 [1, vocab] (Q8 logit units) of
row n - 1. rows = 1 is the decode step; rows = P the prefill of up to P prompt tokens (the C program
runs decode steps through the same graph with n = 1, so the weights exist once). The KV cache is
two state tensors ``kcache`` / ``vcache`` int8 [layers, max_seq, kv_dim].

Per layer: QRMSNormDyn -> QLinearDyn (wq, wk, wv) -> QRoPE (q, k) -> QAttentionKV -> QLinearDyn (wo)
-> QAddSat, then QRMSNormDyn -> QLinearDyn (w1, w3) -> QSwiGLU -> QLinearDyn (w2) -> QAddSat; then
Sub + Gather pick row n - 1 for the final QRMSNormDyn and the classifier (QLinearDyn on the embedding
table). Every layer op is row-wise, so passes/row_blocks.py runs them all as one region in blocks of
rows, updating the residual stream in place.
"""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Node, Tensor
from ...ops.softmax import EXP2_Q15
from ...ops.swiglu import SIGMOID_Q15
from .intmodel import IntLlama


class _B:
    def __init__(self, name: str):
        self.g = Graph(name, {}, [], [], [])

    def t(self, name, shape, dtype, state=False):
        self.g.tensors[name] = Tensor(name, tuple(shape), np.dtype(dtype), state=state)
        return name

    def c(self, name, value, dtype):
        value = np.ascontiguousarray(np.asarray(value).astype(dtype))
        self.g.tensors[name] = Tensor(name, value.shape, value.dtype, value)
        return name

    def node(self, op, name, inputs, outs, **attrs):
        """outs: (name, shape, dtype) per output; returns the output names."""
        self.g.nodes.append(Node(op, name, inputs, [o for o, *_ in outs], attrs))
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
    emb = [b.c("emb_w8", m.qw["emb"][0], np.int8), b.c("emb_mw", m.qw["emb"][1], np.int16)]
    cos, sin = b.c("rope_cos", m.cos, np.int16), b.c("rope_sin", m.sin, np.int16)
    exp2, sig = b.c("exp2_q15", EXP2_Q15, np.int32), b.c("sigmoid_q15", SIGMOID_Q15, np.int32)
    i16, i8, i32 = np.int16, np.int8, np.int32
    x, = b.node("QEmbedding", "embed", ["tokens", "n"] + emb, [("x0", (rows, D), i16)], c=m.c["emb"], bits=m.rb)

    def norm(name, l, x, n="n", T=rows):
        G = b.c(f"g_{name}{l}", m.G[name, l], i16)
        return b.node("QRMSNormDyn", f"{name}_norm{l}", [x, n, G],
                      [(f"{name}_z{l}", (T, D), i8), (f"{name}_F{l}", (T, 2), i32)],
                      epsn=int(m.epsn), c=m.c["norm", name, l], qmax=m.qmax)

    def linear(name, l, x8, F, bits):
        w8, mw = m.qw[name, l]
        ins = [x8, F, "n", b.c(f"{name}_{l}_w8", w8, i8), b.c(f"{name}_{l}_mw", mw, i16)]
        return b.node("QLinearDyn", f"{name}_{l}", ins, [(f"{name}_{l}_out", (rows, w8.shape[0]), i16)],
                      c=m.c["out", name, l], bits=bits)[0]

    def add(name, l, x, y):
        return b.node("QAddSat", f"{name}_add{l}", [x, y, "n"], [(f"x_{name}{l}", (rows, D), i16)], bits=m.rb)[0]

    for l in range(L):
        z8, F = norm("att", l, x)
        q, k, v = (linear(w, l, z8, F, 16) for w in ("wq", "wk", "wv"))
        q, = b.node("QRoPE", f"rope_q{l}", [q, "pos", "n", cos, sin], [(f"q_rot{l}", (rows, D), i16)],
                    head_size=cfg.head_size)
        k, = b.node("QRoPE", f"rope_k{l}", [k, "pos", "n", cos, sin], [(f"k_rot{l}", (rows, KV), i16)],
                    head_size=cfg.head_size)
        cache = [kc, vc, b.c(f"kq{l}", _pair(*m.kq[l]), i32), b.c(f"vq{l}", _pair(*m.vq[l]), i32),
                 b.c(f"mk{l}", m.mk[l], i16), b.c(f"mv{l}", m.mv[l], i16), exp2]
        a8, aF = b.node("QAttentionKV", f"attention{l}", [q, k, v, "pos", "n"] + cache,
                        [(f"att{l}", (rows, D), i8), (f"att_F{l}", (rows, 2), i32)], layer=l,
                        head_size=cfg.head_size, c_score=m.c["score", l], softmax_bits=m.d.softmax_bits,
                        c=m.c["dyn", "wo_in", l], qmax=m.qmax)
        x = add("att", l, x, linear("wo", l, a8, aF, m.rb))
        z8, F = norm("ffn", l, x)
        h1, h3 = linear("w1", l, z8, F, 16), linear("w3", l, z8, F, 16)
        g8, gF = b.node("QSwiGLU", f"swiglu{l}", [h1, h3, "n", sig],
                        [(f"g{l}", (rows, Hd), i8), (f"g_F{l}", (rows, 2), i32)],
                        frac_bits=m.a["h1"][l], c=m.c["dyn", "w2_in", l], qmax=m.qmax)
        x = add("ffn", l, x, linear("w2", l, g8, gF, m.rb))
    last, = b.node("Sub", "last_index", ["n", b.c("one", np.array([1]), i32)], [("last", (1,), i32)])
    x, = b.node("Gather", "last_row", [x, last], [("x_last", (1, D), i16)], axis=0)
    z8, F = norm("final", 0, x, n="", T=1)
    cls = emb if m.qw["cls"] is m.qw["emb"] else [b.c("cls_w8", m.qw["cls"][0], i8), b.c("cls_mw", m.qw["cls"][1], i16)]
    b.node("QLinearDyn", "classifier", [z8, F, ""] + cls, [("logits", (1, cfg.vocab_size), i32)],
           c=m.c["logits"], bits=32)
    b.g.outputs = ["logits"]
    b.g.validate()
    return b.g
