"""Export a llama2.c checkpoint as a standard float32 ONNX model (opset 17) for onnxruntime.

The exported graph is an independent cross-check of the importer (``checkpoint``) and of the
compiler's model: it is built from plain ONNX operators only, from the float32 (dequantized) weights,
and is compared with ``FloatLlama`` by top-1 agreement.

Graph contract:

- input ``tokens``: int64 [T], T fixed at export (``seq``, default 64, at most the model's seq_len and
  within budget.HOST_MEMORY_BYTES with the weights and the T x T mask);
  token t sits at position t (the sequence starts at position 0, normally with BOS = 1).
- output ``logits``: float32 [T, vocab]; row t depends only on tokens 0..t (causal), so a shorter
  sequence can be padded with any valid token id and the rows past its end ignored.

There is no KV cache: every call runs full causal attention over all T positions. That is enough for
a cross-check; incremental generation with this graph recomputes the whole window at every step.

Per layer, in llama2.c ``run.c`` order: RMSNorm (decomposed: Mul/ReduceMean/Add/Sqrt/Div/Mul, eps
1e-5) -> q, k, v MatMuls -> RoPE on consecutive pairs (v[2i], v[2i+1]) with precomputed cos/sin
tables [T, head_size/2] (theta 10000) -> grouped-query attention (each kv head repeated kv_mul times
with Expand) with scores / sqrt(head_size), an additive causal mask (0 / -inf) and Softmax -> wo,
residual Add -> RMSNorm -> SwiGLU (h1 * Sigmoid(h1) * h3) -> w2, residual Add. Then the final
RMSNorm and the classifier: MatMul with the transposed embedding when shared (a Transpose node, so
the embedding is stored once), else with the classifier matrix transposed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinydeploy.errors import TinydeployError

from .budget import HOST_MEMORY_BYTES, check_fits, export_parts
from .checkpoint import LlamaConfig, LlamaWeights, read_checkpoint
from .reference import rope_tables

OPSET = 17
DEFAULT_SEQ = 64
F32 = np.float32


class _Builder:
    """Collects nodes and initializers; ``op`` returns the (single) output name."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str | None = None, n_out: int = 1,
           **attrs):
        self._n += 1
        base = name or f"{op_type.lower()}_{self._n}"
        outs = [base] if n_out == 1 else [f"{base}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"n{self._n}_{op_type}",
                                           **attrs))
        return outs[0] if n_out == 1 else outs


def build_model(cfg: LlamaConfig, w: LlamaWeights, seq: int = DEFAULT_SEQ) -> onnx.ModelProto:
    """The llama2.c model as an ONNX ModelProto with a static sequence length ``seq``."""
    if not 1 <= seq <= cfg.seq_len:
        raise TinydeployError(f"--seq {seq}: must be between 1 and the model's seq_len {cfg.seq_len}")
    check_fits(f"export-llama --seq {seq}", export_parts(cfg, w, seq), HOST_MEMORY_BYTES, "export-llama allows on the host")
    if cfg.dim % cfg.n_heads or cfg.n_heads % cfg.n_kv_heads or cfg.head_size % 2:
        raise TinydeployError(f"unsupported head layout: dim {cfg.dim}, {cfg.n_heads} heads, "
                              f"{cfg.n_kv_heads} kv heads")
    T, hs, nh, nkv, kvm = seq, cfg.head_size, cfg.n_heads, cfg.n_kv_heads, cfg.kv_mul
    b = _Builder()

    # shared constants
    eps = b.const("eps", np.array(cfg.norm_eps, F32))
    cos, sin = rope_tables(cfg, T)  # [T, hs/2], float32, as run.c computes them
    cos_c = b.const("rope_cos", cos.reshape(T, 1, hs // 2, 1))
    sin_c = b.const("rope_sin", sin.reshape(T, 1, hs // 2, 1))
    mask = np.where(np.tril(np.ones((T, T), bool)), F32(0.0), F32(-np.inf)).astype(F32)
    mask_c = b.const("causal_mask", mask)  # [T, T], broadcast over heads
    scale_c = b.const("att_scale", np.array(np.sqrt(F32(hs)), F32))
    shp = {
        "q_pairs": b.const("shape_q_pairs", np.array([T, nh, hs // 2, 2], np.int64)),
        "k_pairs": b.const("shape_k_pairs", np.array([T, nkv, hs // 2, 2], np.int64)),
        "q_heads": b.const("shape_q_heads", np.array([T, nh, hs], np.int64)),
        "kv_grp": b.const("shape_kv_grp", np.array([T, nkv, 1, hs], np.int64)),
        "kv_exp": b.const("shape_kv_exp", np.array([T, nkv, kvm, hs], np.int64)),
        "flat": b.const("shape_flat", np.array([T, cfg.dim], np.int64)),
    }

    def rmsnorm(x: str, weight: np.ndarray, wname: str) -> str:
        sq = b.op("Mul", [x, x])
        ms = b.op("ReduceMean", [sq], axes=[-1], keepdims=1)
        rms = b.op("Sqrt", [b.op("Add", [ms, eps])])
        return b.op("Mul", [b.op("Div", [x, rms]), b.const(wname, weight.astype(F32))])

    def linear(x: str, mat: np.ndarray, wname: str) -> str:
        # checkpoint matrices are [out, in]; y = x @ W^T
        return b.op("MatMul", [x, b.const(wname, np.ascontiguousarray(mat.T, F32))])

    def rope(v: str, pairs_shape: str, heads_shape: str) -> str:
        """[T, n*hs] -> rotated [T, n, hs]: (v0, v1) -> (v0 c - v1 s, v0 s + v1 c)."""
        p = b.op("Reshape", [v, pairs_shape])  # [T, n, hs/2, 2]
        v0, v1 = b.op("Split", [p], n_out=2, axis=-1)  # [T, n, hs/2, 1] each
        r0 = b.op("Sub", [b.op("Mul", [v0, cos_c]), b.op("Mul", [v1, sin_c])])
        r1 = b.op("Add", [b.op("Mul", [v0, sin_c]), b.op("Mul", [v1, cos_c])])
        return b.op("Reshape", [b.op("Concat", [r0, r1], axis=-1), heads_shape])

    def repeat_kv(t: str) -> str:
        """[T, nkv, hs] -> [T, nh, hs], query head h reading kv head h // kv_mul."""
        if kvm == 1:
            return t
        g = b.op("Expand", [b.op("Reshape", [t, shp["kv_grp"]]), shp["kv_exp"]])
        return b.op("Reshape", [g, shp["q_heads"]])

    kv_heads = b.const("shape_kv_heads", np.array([T, nkv, hs], np.int64))
    emb = b.const("token_embedding", w.token_embedding.astype(F32))
    x = b.op("Gather", [emb, "tokens"], name="x_embed", axis=0)  # [T, dim]
    for l in range(cfg.n_layers):
        xb = rmsnorm(x, w.rms_att[l], f"l{l}.rms_att")
        q = rope(linear(xb, w.wq[l], f"l{l}.wq_t"), shp["q_pairs"], shp["q_heads"])
        k = rope(linear(xb, w.wk[l], f"l{l}.wk_t"), shp["k_pairs"], kv_heads)
        v = b.op("Reshape", [linear(xb, w.wv[l], f"l{l}.wv_t"), kv_heads])
        qh = b.op("Transpose", [q], perm=[1, 0, 2])  # [nh, T, hs]
        kh = b.op("Transpose", [repeat_kv(k)], perm=[1, 2, 0])  # [nh, hs, T]
        vh = b.op("Transpose", [repeat_kv(v)], perm=[1, 0, 2])  # [nh, T, hs]
        scores = b.op("Div", [b.op("MatMul", [qh, kh]), scale_c])  # [nh, T, T]
        probs = b.op("Softmax", [b.op("Add", [scores, mask_c])], axis=-1)
        att = b.op("Transpose", [b.op("MatMul", [probs, vh])], perm=[1, 0, 2])  # [T, nh, hs]
        att = b.op("Reshape", [att, shp["flat"]])
        x = b.op("Add", [x, linear(att, w.wo[l], f"l{l}.wo_t")], name=f"l{l}_x_mid")
        xb = rmsnorm(x, w.rms_ffn[l], f"l{l}.rms_ffn")
        h1 = linear(xb, w.w1[l], f"l{l}.w1_t")
        h3 = linear(xb, w.w3[l], f"l{l}.w3_t")
        g = b.op("Mul", [b.op("Mul", [h1, b.op("Sigmoid", [h1])]), h3])
        x = b.op("Add", [x, linear(g, w.w2[l], f"l{l}.w2_t")], name=f"l{l}_x_out")
    xf = rmsnorm(x, w.rms_final, "rms_final")
    if cfg.shared_classifier:
        cls_t = b.op("Transpose", [emb], name="classifier_t", perm=[1, 0])  # [dim, vocab]
    else:
        cls_t = b.const("classifier_t", np.ascontiguousarray(w.wcls.T, F32))
    b.nodes.append(helper.make_node("MatMul", [xf, cls_t], ["logits"], name="classifier"))

    graph = helper.make_graph(
        b.nodes, "llama2c",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [T])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [T, cfg.vocab_size])],
        initializer=b.inits)
    graph.doc_string = (f"llama2.c model, dim {cfg.dim}, {cfg.n_layers} layers, {nh} heads "
                        f"({nkv} kv), vocab {cfg.vocab_size}; static T={T}, full causal attention, "
                        f"no KV cache")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="tinydeploy export-llama")
    model.ir_version = 8  # opset 17 pairs with IR 8; keeps older onnxruntime builds happy
    onnx.checker.check_model(model, full_check=True)
    return model


def export_llama(checkpoint: str | Path, seq: int = DEFAULT_SEQ) -> bytes:
    """Serialized ONNX model of the llama2.c checkpoint at ``checkpoint``."""
    cfg, w = read_checkpoint(checkpoint)
    return build_model(cfg, w, seq).SerializeToString()
