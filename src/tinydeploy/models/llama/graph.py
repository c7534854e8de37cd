"""The integer llama (``IntLlama``'s constants) as tinydeploy IR graphs of the SLM ops in ops/llama.py.

``build_graph(model, rows)``: inputs ``tokens`` int32 [rows], ``pos`` int32 [1] (position of row 0)
and ``n`` int32 [1] (valid rows, 1..rows); output ``logits`` int32 [1, vocab] (Q8 logit units) of
row n - 1. rows = 1 is the decode step; rows = P the prefill of up to P prompt tokens (the C program
runs decode steps through the same graph with n = 1, so the weights exist once). The KV cache is
two state tensors ``kcache`` / ``vcache`` int8 [layers, max_seq, kv_dim]. Each layer is two fused
ops (ops/llama_block.py: attention half, FFN half) that update the residual stream in place and run
their chains on blocks of ``block`` rows, so the arena holds x for all rows plus one block's scratch.
"""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Node, Tensor
from ...ops.softmax import EXP2_Q15
from ...ops.swiglu import SIGMOID_Q15
from ...ops.llama_block import attn_scratch, ffn_scratch, scratch_bytes
from .intmodel import IntLlama

BLOCK_ROWS = 8  # rows per block inside the fused layer halves (their scratch holds this many rows)


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


def build_graph(model: IntLlama, rows: int, block: int = BLOCK_ROWS) -> Graph:
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

    R = min(block, rows)
    sb = max(scratch_bytes(attn_scratch(R, D, KV)), scratch_bytes(ffn_scratch(R, D, Hd)))

    def w(name, l):
        w8, mw = m.qw[name, l]
        return [b.c(f"{name}{l}_w8", w8, np.int8), b.c(f"{name}{l}_mw", mw, np.int16)]

    def norm_attrs(name, l):
        return dict(epsn=int(m.epsn), c_norm=m.c["norm", name, l], qmax=m.qmax, block=R, scratch_bytes=sb)

    for l in range(L):
        consts = [b.c(f"kq{l}", _pair(*m.kq[l]), np.int32), b.c(f"vq{l}", _pair(*m.vq[l]), np.int32),
                  b.c(f"mk{l}", m.mk[l], np.int16), b.c(f"mv{l}", m.mv[l], np.int16), exp2]
        ins = ([x, "pos", "n", b.c(f"g_att{l}", m.G["att", l], np.int16)] + w("wq", l) + w("wk", l) + w("wv", l)
               + [cos, sin, kc, vc] + consts + w("wo", l))
        x, = b.node("LlamaAttnBlock", ins, [(f"xm{l}", (rows, D), np.int16)], layer=l,
                    c_q=m.c["out", "wq", l], c_k=m.c["out", "wk", l], c_v=m.c["out", "wv", l],
                    c_o=m.c["out", "wo", l], bits=m.rb, c_score=m.c["score", l], c_dyn=m.c["dyn", "wo_in", l],
                    head_size=cfg.head_size, kv_mul=cfg.kv_mul, softmax_bits=m.d.softmax_bits,
                    **norm_attrs("att", l))
        ins = [x, "pos", "n", b.c(f"g_ffn{l}", m.G["ffn", l], np.int16)] + w("w1", l) + w("w3", l) + w("w2", l) + [sig]
        x, = b.node("LlamaFfnBlock", ins, [(f"x{l + 1}", (rows, D), np.int16)],
                    c_1=m.c["out", "w1", l], c_3=m.c["out", "w3", l], c_2=m.c["out", "w2", l], bits=m.rb,
                    frac_bits=m.a["h1"][l], c_dyn=m.c["dyn", "w2_in", l], **norm_attrs("ffn", l))
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
