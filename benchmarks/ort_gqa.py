"""The fastest onnxruntime graph of a llama2.c model we could build for CPU decoding (the benchmark's
second onnxruntime point): ORT's contrib ops as onnxruntime-genai uses them, float32.

Per layer: one packed q|k|v MatMul -> com.microsoft GroupQueryAttention (RoPE inside, interleaved
pairs: llama2.c's own convention, so wq/wk keep their rows; causal attention over the KV cache) ->
wo MatMul -> SkipSimplifiedLayerNormalization (residual add + RMSNorm in one kernel) -> one packed
w1|w3 MatMul, SiLU gate -> w2 MatMul -> the next layer's SkipSimplifiedLayerNormalization. Then the
classifier MatMul.

The caches are [1, n_kv, max_seq, hs] buffers that GroupQueryAttention updates in place when past
and present are bound to the same OrtValue (IO binding); the run-time lengths are ``seqlens_k`` =
[position of the last token] and ``total_sequence_length`` = that + 1.

ORT 1.32's CPU GroupQueryAttention needs a head size that is a multiple of 16: stories260K's heads
of 8 are padded with zero rows of wq/wk/wv (and zero columns of wo), the rotation set to identity on
the padding, the scale kept at 1/sqrt(8). The padding doubles the attention's cache and work, a few
microseconds of the step.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from tinydeploy.models.llama.checkpoint import LlamaConfig, LlamaWeights
from tinydeploy.models.llama.export_onnx import _Builder
from tinydeploy.models.llama.reference import rope_tables

F32 = np.float32


def head_pad(cfg: LlamaConfig) -> int:
    """The head size the graph uses: hs rounded up to a multiple of 16."""
    return -(-cfg.head_size // 16) * 16


def build(cfg: LlamaConfig, w: LlamaWeights, max_seq: int) -> onnx.ModelProto:
    hs, hp, nh, nkv, eps = cfg.head_size, head_pad(cfg), cfg.n_heads, cfg.n_kv_heads, cfg.norm_eps
    b = _Builder()
    t = lambda name, m: b.const(name, np.ascontiguousarray(np.asarray(m, F32).T))  # noqa: E731  [out, in] -> x @ W^T

    def pad_rows(m, n):  # [n*hs, dim] -> [n*hp, dim], zero rows after each head
        out = np.zeros((n, hp, m.shape[-1]), F32)
        out[:, :hs] = m.reshape(n, hs, -1)
        return out.reshape(n * hp, -1)

    cos, sin = rope_tables(cfg, max_seq)
    cos_p, sin_p = np.ones((max_seq, hp // 2), F32), np.zeros((max_seq, hp // 2), F32)
    cos_p[:, :hs // 2], sin_p[:, :hs // 2] = cos, sin
    cos_c, sin_c = b.const("cos_cache", cos_p), b.const("sin_cache", sin_p)
    emb = b.const("token_embedding", w.token_embedding.astype(F32))

    def skip_norm(delta, resid, gain, name):  # -> (normalized, delta + resid)
        out = b.op("SkipSimplifiedLayerNormalization", [delta, resid, b.const(name, gain.astype(F32))],
                   n_out=4, domain="com.microsoft", epsilon=eps)
        return out[0], out[3]

    x = b.op("Gather", [emb, "input_ids"], axis=0)
    xb = b.op("SimplifiedLayerNormalization", [x, b.const("l0.rms_att", w.rms_att[0].astype(F32))],
              epsilon=eps, axis=-1)
    caches = []
    for l in range(cfg.n_layers):
        qkv = np.concatenate([pad_rows(w.wq[l], nh), pad_rows(w.wk[l], nkv), pad_rows(w.wv[l], nkv)])
        past = [f"past_key_values.{l}.key", f"past_key_values.{l}.value"]
        caches += past
        att = f"l{l}_att"
        b.nodes.append(helper.make_node(
            "GroupQueryAttention", [b.op("MatMul", [xb, t(f"l{l}.wqkv_t", qkv)]), "", "", *past, "seqlens_k",
                                    "total_sequence_length", cos_c, sin_c],
            [att, f"present.{l}.key", f"present.{l}.value"], name=f"l{l}_gqa", domain="com.microsoft",
            num_heads=nh, kv_num_heads=nkv, do_rotary=1, rotary_interleaved=1, scale=float(hs ** -0.5)))
        wo = np.zeros((cfg.dim, nh, hp), F32)
        wo[:, :, :hs] = w.wo[l].reshape(cfg.dim, nh, hs)
        xb, x = skip_norm(b.op("MatMul", [att, t(f"l{l}.wo_t", wo.reshape(cfg.dim, -1))]), x, w.rms_ffn[l],
                          f"l{l}.rms_ffn")
        h1, h3 = b.op("Split", [b.op("MatMul", [xb, t(f"l{l}.w13_t", np.concatenate([w.w1[l], w.w3[l]]))])],
                      n_out=2, axis=-1)
        g = b.op("Mul", [b.op("Mul", [h1, b.op("Sigmoid", [h1])]), h3])
        last = l + 1 == cfg.n_layers
        xb, x = skip_norm(b.op("MatMul", [g, t(f"l{l}.w2_t", w.w2[l])]), x,
                          w.rms_final if last else w.rms_att[l + 1], "rms_final" if last else f"l{l + 1}.rms_att")
    b.nodes.append(helper.make_node("MatMul", [xb, t("classifier_t", w.wcls)], ["logits"], name="classifier"))

    cache = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, nkv, max_seq, hp])  # noqa: E731
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "sequence_length"]),
              helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, [1]),
              helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, [])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "sequence_length", cfg.vocab_size])]
    graph = helper.make_graph(b.nodes, "llama2c_gqa", inputs + [cache(n) for n in caches],
                              outputs + [cache(n.replace("past_key_values", "present")) for n in caches],
                              initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model


class GqaDecoder:
    """Decoding with the graph of ``build``: inputs and caches bound once, caches updated in place."""

    def __init__(self, sess: ort.InferenceSession, cfg: LlamaConfig, max_seq: int):
        self.sess, self.io = sess, sess.io_binding()
        self.ids, self.seqlens, self.total = np.zeros((1, 1), np.int64), np.zeros(1, np.int32), np.zeros((), np.int32)
        for name, arr in (("input_ids", self.ids), ("seqlens_k", self.seqlens), ("total_sequence_length", self.total)):
            self.io.bind_cpu_input(name, arr)
        for i in range(cfg.n_layers):
            for kv in ("key", "value"):
                buf = ort.OrtValue.ortvalue_from_shape_and_type([1, cfg.n_kv_heads, max_seq, head_pad(cfg)], np.float32)
                self.io.bind_ortvalue_input(f"past_key_values.{i}.{kv}", buf)
                self.io.bind_ortvalue_output(f"present.{i}.{kv}", buf)
        self.logits = ort.OrtValue.ortvalue_from_shape_and_type([1, 1, cfg.vocab_size], np.float32)
        self.io.bind_ortvalue_output("logits", self.logits)

    def set(self, token: int, pos: int) -> None:
        self.ids[0, 0], self.seqlens[0], self.total[...] = token, pos, pos + 1

    def run(self) -> None:
        self.sess.run_with_iobinding(self.io)

    def last_logits(self) -> np.ndarray:
        return self.logits.numpy()[0, -1]
