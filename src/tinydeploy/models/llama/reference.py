"""float32 numpy reference of a llama2.c model, in the order of operations of llama2.c ``run.c``.

Per layer: RMSNorm (eps 1e-5) -> q, k, v projections -> RoPE on consecutive pairs (theta 10000,
frequency from the index within the head) -> k, v into the cache -> grouped-query attention with a
causal softmax scaled by 1/sqrt(head_size) -> wo, residual add -> RMSNorm -> SwiGLU
(silu(w1 x) * w3 x) -> w2, residual add. Then the final RMSNorm and the classifier.

Every intermediate value is rounded to float32, as in run.c, but dot products and sums accumulate in
float64 and are rounded once: then the result does not depend on how BLAS blocks a matrix product,
so ``forward_many`` (prefill, T rows) and ``forward`` (one decode step) agree to about 1e-7 instead
of the ~2e-5 that float32 accumulation in different orders gives.
"""

from __future__ import annotations

import numpy as np

from tinydeploy.errors import TinydeployError

from .checkpoint import LlamaConfig, LlamaWeights
from .sampling import SamplerParams, XorShiftRng, generate_tokens, logits_to_q8, sample

F32 = np.float32
F64 = np.float64


def matmul(x: np.ndarray, w_t: np.ndarray) -> np.ndarray:
    """x [..., n] float32 times w_t [n, m] float64, accumulated in float64, rounded to float32."""
    return (x.astype(F64) @ w_t).astype(F32)


def rope_freqs(cfg: LlamaConfig) -> np.ndarray:
    """[head_size/2] float32 as run.c computes them: 1 / 10000^(head_dim / head_size) for
    head_dim = 0, 2, 4, ..."""
    hd = np.arange(0, cfg.head_size, 2, dtype=F32)
    return (F32(1.0) / np.power(F32(cfg.rope_theta), hd / F32(cfg.head_size))).astype(F32)


def rope_tables(cfg: LlamaConfig, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [seq_len, head_size/2] as run.c computes them in float32: angle = pos * freq."""
    freq = rope_freqs(cfg)
    ang = (np.arange(seq_len, dtype=F32)[:, None] * freq[None, :]).astype(F32)
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    ss = (np.sum(x * x, axis=-1, keepdims=True, dtype=F64).astype(F32) / F32(x.shape[-1])
          + F32(eps))
    return (weight * (x * (F32(1.0) / np.sqrt(ss)))).astype(F32)


def apply_rope(v: np.ndarray, cos: np.ndarray, sin: np.ndarray, head_size: int) -> np.ndarray:
    """Rotate consecutive pairs (v[2i], v[2i+1]) of each head; v is [T, n*head_size], cos/sin
    [T, head_size/2]."""
    T = v.shape[0]
    pairs = v.reshape(T, -1, head_size // 2, 2)
    c, s = cos[:, None, :], sin[:, None, :]
    v0, v1 = pairs[..., 0], pairs[..., 1]
    out = np.stack([v0 * c - v1 * s, v0 * s + v1 * c], axis=-1)
    return out.reshape(v.shape).astype(F32)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True, dtype=F64).astype(F32)).astype(F32)


class FloatLlama:
    """float32 model with a KV cache. Positions must be filled in order (prefill then decode)."""

    def __init__(self, cfg: LlamaConfig, w: LlamaWeights, seq_len: int | None = None):
        self.cfg, self.w = cfg, w
        self.seq_len = seq_len or cfg.seq_len
        self.cos, self.sin = rope_tables(cfg, self.seq_len)
        # float64 transposed copies of the float32 weights (exact), for float64 accumulation
        self._t = {n: np.ascontiguousarray(np.swapaxes(getattr(w, n), -1, -2), F64)
                   for n in ("wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls")}
        shape = (cfg.n_layers, self.seq_len, cfg.kv_dim)
        self.key_cache = np.zeros(shape, F32)
        self.value_cache = np.zeros(shape, F32)

    def forward(self, token: int, pos: int) -> np.ndarray:
        """Logits [vocab] for ``token`` at position ``pos`` (positions < pos must be cached)."""
        return self.forward_many([token], pos)[0]

    def forward_many(self, tokens, start_pos: int, trace: dict | None = None) -> np.ndarray:
        """Prefill: logits [T, vocab] for tokens at positions start_pos .. start_pos + T - 1.

        ``trace``, if given, receives the intermediate tensors (name -> list over layers of [T, ...]
        arrays): the calibration of integer models reads their ranges from it."""
        rec = (lambda k, v: trace.setdefault(k, []).append(v)) if trace is not None else (
            lambda k, v: None)
        cfg, w, t = self.cfg, self.w, self._t
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        T, end = len(tokens), start_pos + len(tokens)
        if T == 0 or start_pos < 0 or end > self.seq_len:
            raise TinydeployError(
                f"positions {start_pos}..{end - 1} are outside the model's 0..{self.seq_len - 1}")
        if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
            raise TinydeployError(f"token id out of range 0..{cfg.vocab_size - 1}")
        hs, nh, nkv = cfg.head_size, cfg.n_heads, cfg.n_kv_heads
        cos, sin = self.cos[start_pos:end], self.sin[start_pos:end]
        # causal mask: query row t (position start_pos + t) sees cached positions <= its own
        visible = np.arange(end)[None, :] <= (start_pos + np.arange(T))[:, None]
        x = w.token_embedding[tokens].astype(F32)
        for l in range(cfg.n_layers):
            rec("x", x)
            xb = rmsnorm(x, w.rms_att[l], cfg.norm_eps)
            q_pre, k_pre = matmul(xb, t["wq"][l]), matmul(xb, t["wk"][l])
            q = apply_rope(q_pre, cos, sin, hs)
            self.key_cache[l, start_pos:end] = apply_rope(k_pre, cos, sin, hs)
            self.value_cache[l, start_pos:end] = matmul(xb, t["wv"][l])
            rec("q_pre", q_pre), rec("k_pre", k_pre), rec("q", q)
            rec("k", self.key_cache[l, start_pos:end].copy())
            rec("v", self.value_cache[l, start_pos:end].copy())
            k = self.key_cache[l, :end].reshape(end, nkv, hs)
            v = self.value_cache[l, :end].reshape(end, nkv, hs)
            # head h reads kv head h // kv_mul
            kh = np.repeat(k, cfg.kv_mul, axis=1).transpose(1, 2, 0)  # [nh, hs, end]
            vh = np.repeat(v, cfg.kv_mul, axis=1).transpose(1, 0, 2)  # [nh, end, hs]
            qh = q.reshape(T, nh, hs).transpose(1, 0, 2)  # [nh, T, hs]
            scores = matmul(qh, kh.astype(F64)) / F32(np.sqrt(F32(hs)))
            scores = np.where(visible[None], scores, F32(-np.inf))
            att = matmul(softmax(scores), vh.astype(F64))  # [nh, T, hs]
            att = att.transpose(1, 0, 2).reshape(T, cfg.dim)
            rec("att", att)
            x = (x + matmul(att, t["wo"][l])).astype(F32)
            rec("x_mid", x)
            xb = rmsnorm(x, w.rms_ffn[l], cfg.norm_eps)
            h1, h3 = matmul(xb, t["w1"][l]), matmul(xb, t["w3"][l])
            hb = (h1 * (F32(1.0) / (F32(1.0) + np.exp(-h1))) * h3).astype(F32)
            rec("h1", h1), rec("h3", h3), rec("g", hb)
            x = (x + matmul(hb, t["w2"][l])).astype(F32)
        rec("x_final", x)
        x = rmsnorm(x, w.rms_final, cfg.norm_eps)
        return matmul(x, t["wcls"])

    def generate(self, prompt_ids=(), steps: int = 256, temperature: float = 0.0,
                 top_p: float = 0.9, seed: int = 0) -> list[int]:
        """New token ids after ``prompt_ids`` (the prompt including its BOS; empty means [BOS]).

        Stops after ``steps`` new tokens, when the model emits BOS (not returned, as llama2.c), or at
        the end of the context. Greedy (temperature 0) takes the argmax of the float logits; sampling
        uses the integer sampler of ``sampling`` on the logits converted to Q8 units.
        """
        params, rng = SamplerParams.from_float(temperature, top_p), XorShiftRng(seed)

        def pick(logits):
            return int(np.argmax(logits)) if params.greedy else sample(logits_to_q8(logits), params, rng)
        return generate_tokens(self, prompt_ids, steps, pick)
