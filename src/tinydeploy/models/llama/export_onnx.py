"""Export a llama2.c checkpoint as a float32 ONNX decoder with a KV cache (opset 17), in the layout
``optimum`` writes for ``text-generation-with-past``, for onnxruntime and for the ONNX import route.

Graph contract (B batch, S new tokens, P cached positions, V vocab, n_kv heads of head_size hs):

- inputs ``input_ids`` int64 [B, S]; ``attention_mask`` int64 [B, P + S] (1 = attend, 0 = padding);
  ``position_ids`` int64 [B, S] (the RoPE angles); ``past_key_values.{i}.key`` / ``.value`` float32
  [B, n_kv, P, hs] for each layer i (P = 0 on the first call);
- outputs ``logits`` float32 [B, S, V]; ``present.{i}.key`` / ``.value`` float32 [B, n_kv, P + S, hs]:
  the caches with the S new rows appended, to feed back as the next call's past. The logits of a
  padding token (attention_mask 0) are not defined (it attends to nothing; HF's differ).

It is the Hugging Face ``LlamaForCausalLM`` of the same weights, so it computes what optimum's
export does (without its shape machinery; the lengths come from two Shape nodes): HF rotates the
halves (v[i], v[i + hs/2]) of each head where llama2.c rotates consecutive pairs (v[2i], v[2i+1]),
so the rows of wq and wk are permuted per head (``hf_rows``: the llama2.c -> HF conversion); q.k is
unchanged, the cached keys are in HF order. Per layer: RMSNorm (x * 1/sqrt(mean(x^2) + 1e-5) * g)
-> q, k, v MatMuls -> RoPE with cos/sin of position_ids * inv_freq computed in the graph -> k, v
appended to the past -> grouped-query attention (each kv head repeated n_heads / n_kv times,
Expand + Reshape as HF's repeat_kv) scaled by hs^-0.5 with an additive mask (causal on the
positions P..P+S-1, and attention_mask; float32 min where masked, as HF) -> wo, residual ->
RMSNorm -> SwiGLU (w2(silu(w1 x) * w3 x)), residual. Then the final RMSNorm and the classifier: a
Transpose of the embedding when shared (stored once), else the classifier matrix transposed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinydeploy.errors import TinydeployError

from .budget import HOST_MEMORY_BYTES, check_fits, export_parts
from .checkpoint import LlamaConfig, LlamaWeights, read_checkpoint
from .reference import rope_freqs

OPSET = 17
F32 = np.float32
# optimum's names of the dynamic dimensions
BATCH, SEQ, PAST, TOTAL = ("batch_size", "sequence_length", "past_sequence_length",
                           "past_sequence_length + sequence_length")


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


def hf_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """wq or wk [L, n_heads * hs, dim] from llama2.c's row order (head row 2i + j is component j of
    pair i) to Hugging Face's (row j * hs/2 + i)."""
    L, rows, cols = w.shape
    return w.reshape(L, n_heads, rows // n_heads // 2, 2, cols).swapaxes(2, 3).reshape(w.shape)


def io_names(cfg: LlamaConfig) -> tuple[list[str], list[str]]:
    """The graph's input and output names, in order."""
    caches = [f"{i}.{kv}" for i in range(cfg.n_layers) for kv in ("key", "value")]
    return (["input_ids", "attention_mask", "position_ids"] + [f"past_key_values.{c}" for c in caches],
            ["logits"] + [f"present.{c}" for c in caches])


def build_model(cfg: LlamaConfig, w: LlamaWeights) -> onnx.ModelProto:
    """The llama2.c model as an ONNX decoder with past/present KV caches."""
    check_fits("export-llama", export_parts(cfg, w), HOST_MEMORY_BYTES, "export-llama allows on the host")
    if cfg.dim % cfg.n_heads or cfg.n_heads % cfg.n_kv_heads or cfg.head_size % 2:
        raise TinydeployError(f"unsupported head layout: dim {cfg.dim}, {cfg.n_heads} heads, "
                              f"{cfg.n_kv_heads} kv heads")
    hs, nh, nkv, kvm = cfg.head_size, cfg.n_heads, cfg.n_kv_heads, cfg.kv_mul
    b = _Builder()
    i64 = lambda name, *v: b.const(name, np.array(v, np.int64))  # noqa: E731

    # shared constants
    eps = b.const("eps", np.array(cfg.norm_eps, F32))
    ax0, ax1, ax2, ax12 = i64("axes_0", 0), i64("axes_1", 1), i64("axes_2", 2), i64("axes_1_2", 1, 2)
    shape_heads = {n: i64(f"shape_{n}_heads", 0, 0, n, hs) for n in {nh, nkv}}  # [B, S, n, hs]
    shape_flat = i64("shape_flat", 0, 0, cfg.dim)
    names_in, names_out = io_names(cfg)

    # run-time lengths: S new tokens at positions P .. P+S-1
    scalar = lambda x: b.op("Squeeze", [x, ax0])  # noqa: E731
    seq = scalar(b.op("Shape", ["input_ids"], start=1, end=2))
    past = scalar(b.op("Shape", [names_in[3]], start=2, end=3))
    total = b.op("Add", [past, seq])
    one = b.const("one", np.array(1, np.int64))
    key_pos = b.op("Unsqueeze", [b.op("Range", [b.const("zero", np.array(0, np.int64)), total, one]), ax0])
    query_pos = b.op("Unsqueeze", [b.op("Range", [past, total, one]), ax1])
    keep = b.op("Unsqueeze", [b.op("Cast", ["attention_mask"], to=TensorProto.BOOL), ax12])
    allowed = b.op("And", [b.op("LessOrEqual", [key_pos, query_pos]), keep])  # [B, 1, S, P+S]
    mask = b.op("Where", [allowed, b.const("mask_keep", np.array(0, F32)),
                          b.const("mask_drop", np.array(np.finfo(F32).min, F32))], name="attn_mask")

    # RoPE angles [B, 1, S, hs]: position * inv_freq, the halves repeated (HF's cat(freqs, freqs))
    pos = b.op("Unsqueeze", [b.op("Cast", ["position_ids"], to=TensorProto.FLOAT), ax2])
    freqs = b.op("Mul", [pos, b.const("inv_freq", rope_freqs(cfg))])
    angles = b.op("Unsqueeze", [b.op("Concat", [freqs, freqs], axis=-1), ax1])
    cos, sin = b.op("Cos", [angles], name="rope_cos"), b.op("Sin", [angles], name="rope_sin")
    scaling = b.const("att_scaling", np.array(hs ** -0.5, F32))
    if kvm > 1:
        expand_kv, shape_kv = i64("expand_kv", 1, 1, kvm, 1, 1), i64("shape_repeat_kv", 0, nh, -1, hs)

    def rmsnorm(x: str, weight: np.ndarray, wname: str) -> str:
        ms = b.op("ReduceMean", [b.op("Mul", [x, x])], axes=[-1], keepdims=1)
        inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [ms, eps])])])
        return b.op("Mul", [b.const(wname, weight.astype(F32)), b.op("Mul", [x, inv])])

    def linear(x: str, mat: np.ndarray, wname: str) -> str:
        # checkpoint matrices are [out, in]; y = x @ W^T
        return b.op("MatMul", [x, b.const(wname, np.ascontiguousarray(mat.T, F32))])

    def heads(x: str, n: int) -> str:
        """[B, S, n*hs] -> [B, n, S, hs]."""
        return b.op("Transpose", [b.op("Reshape", [x, shape_heads[n]])], perm=[0, 2, 1, 3])

    def rope(t: str) -> str:
        """t * cos + rotate_half(t) * sin, rotate_half(t) = (-t[hs/2:], t[:hs/2])."""
        t1, t2 = b.op("Split", [t], n_out=2, axis=-1)
        rot = b.op("Concat", [b.op("Neg", [t2]), t1], axis=-1)
        return b.op("Add", [b.op("Mul", [t, cos]), b.op("Mul", [rot, sin])])

    def repeat_kv(t: str) -> str:
        """[B, nkv, T, hs] -> [B, nh, T, hs], query head h reading kv head h // kv_mul."""
        if kvm == 1:
            return t
        return b.op("Reshape", [b.op("Expand", [b.op("Unsqueeze", [t, ax2]), expand_kv]), shape_kv])

    wq, wk = hf_rows(w.wq, nh), hf_rows(w.wk, nkv)
    emb = b.const("token_embedding", w.token_embedding.astype(F32))
    x = b.op("Gather", [emb, "input_ids"], name="x_embed", axis=0)  # [B, S, dim]
    for l in range(cfg.n_layers):
        xb = rmsnorm(x, w.rms_att[l], f"l{l}.rms_att")
        q = rope(heads(linear(xb, wq[l], f"l{l}.wq_t"), nh))
        k = rope(heads(linear(xb, wk[l], f"l{l}.wk_t"), nkv))
        v = heads(linear(xb, w.wv[l], f"l{l}.wv_t"), nkv)
        k = b.op("Concat", [names_in[3 + 2 * l], k], name=names_out[1 + 2 * l], axis=2)
        v = b.op("Concat", [names_in[4 + 2 * l], v], name=names_out[2 + 2 * l], axis=2)
        kt = b.op("Transpose", [repeat_kv(k)], perm=[0, 1, 3, 2])  # [B, nh, hs, P+S]
        scores = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, kt]), scaling]), mask])
        att = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), repeat_kv(v)])  # [B, nh, S, hs]
        att = b.op("Reshape", [b.op("Transpose", [att], perm=[0, 2, 1, 3]), shape_flat])
        x = b.op("Add", [x, linear(att, w.wo[l], f"l{l}.wo_t")], name=f"l{l}_x_mid")
        xb = rmsnorm(x, w.rms_ffn[l], f"l{l}.rms_ffn")
        h1 = linear(xb, w.w1[l], f"l{l}.w1_t")
        g = b.op("Mul", [b.op("Mul", [h1, b.op("Sigmoid", [h1])]), linear(xb, w.w3[l], f"l{l}.w3_t")])
        x = b.op("Add", [x, linear(g, w.w2[l], f"l{l}.w2_t")], name=f"l{l}_x_out")
    xf = rmsnorm(x, w.rms_final, "rms_final")
    if cfg.shared_classifier:
        cls_t = b.op("Transpose", [emb], name="classifier_t", perm=[1, 0])  # [dim, vocab]
    else:
        cls_t = b.const("classifier_t", np.ascontiguousarray(w.wcls.T, F32))
    b.nodes.append(helper.make_node("MatMul", [xf, cls_t], ["logits"], name="classifier"))

    cache = lambda name, length: helper.make_tensor_value_info(  # noqa: E731
        name, TensorProto.FLOAT, [BATCH, nkv, length, hs])
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [BATCH, SEQ]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [BATCH, TOTAL]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, [BATCH, SEQ])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, SEQ, cfg.vocab_size])]
    graph = helper.make_graph(
        b.nodes, "llama2c", inputs + [cache(n, PAST) for n in names_in[3:]],
        outputs + [cache(n, TOTAL) for n in names_out[1:]], initializer=b.inits)
    graph.doc_string = (f"llama2.c model, dim {cfg.dim}, {cfg.n_layers} layers, {nh} heads "
                        f"({nkv} kv), vocab {cfg.vocab_size}, trained context {cfg.seq_len}; "
                        "optimum text-generation-with-past layout, Hugging Face rotary halves")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="tinydeploy export-llama")
    model.ir_version = 8  # opset 17 pairs with IR 8; keeps older onnxruntime builds happy
    onnx.checker.check_model(model, full_check=True)
    return model


def export_llama(checkpoint: str | Path) -> bytes:
    """Serialized ONNX model of the llama2.c checkpoint at ``checkpoint``."""
    cfg, w = read_checkpoint(checkpoint)
    return build_model(cfg, w).SerializeToString()
