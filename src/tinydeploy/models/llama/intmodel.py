"""All-integer forward of a llama2.c model: the numpy golden model of the C kernels.

``IntLlama.__init__`` is the host (compile) side: it turns float scales into integer constants.
``forward_many`` is the target side: integer arithmetic only (int64 here; the bounds in comments say
where C needs 64 bits), calling the goldens of the compiler's generic integer ops (ops/embedding,
norm, linear, rope, attention, swiglu; primitives and their exact formulas: ops/intmath.py), so the
compiled graph (graph.py) and this model compute the same numbers by construction. Per row (token):

  residual   x: int16, static scale 2^-a_res (calibrated, 2x headroom), saturating adds
  embedding  x = sat16(apply(w8 * mw, C_emb))             (C_emb = 2^-Ew / 2^-a_res)
  RMSNorm    z = x * G (G = gamma * 2^Eg, int16), (z8, M) = quantize_vec(z), T = sum x^2 + EPSN,
             vector scale F = M * inv_sqrt_scale(T) * C_norm (C_norm = sqrt(n) 2^-Eg / 127): the
             1/rms factor is a per-vector scalar, so it goes into F instead of into every element
  matmul     acc_j = sum_g mw_g * sum_{i in g} x8_i w8_ji   (Q8_0 groups; int64), then an output
             at static scale S: out_j = rshift_round(acc_j * m, e), (m, e) = F * 2^-Ew / S
  q, k, v    int16 at static power-of-two scales; RoPE on q16, k16 by Q14 tables
  KV cache   int8, k8_c = sat8(apply(k16_c, Ck_c)) with calibrated per-channel (or per-head) scales
  scores     u_c = q16_c * mk_c (mk = K scale mantissas), (u16, Mu) = quantize_vec(u per head,
             32767), acc_t = sum_c u16_c k8_tc; softmax: e8_t = apply(acc_max - acc_t, G_h) with
             G_h = Mu * C_score (score scale * log2(e) * 256), w_t = exp2_neg_q15(e8_t),
             p_t = (w_t * (2^46 // sum w) + 2^30) >> 31  (Q15)
  att out    o_c = sum_t p_t v8_tc, a_c = o_c * mv_c, (a8, M) = quantize_vec(a) -> wo
  FFN        h1, h3 int16 (static 2^-a1, 2^-a3); s = rshift_round(h1 * sigmoid_q15(h1), 15);
             g = s * h3 (int32); (g8, M) = quantize_vec(g) -> w2
  logits     int32 in Q8 logit units (the sampler's input): apply(acc, F * 2^-Ew * 256)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinydeploy.errors import TinydeployError

from ...ops import attention as att
from ...ops.embedding import embed
from ...ops.intmath import I64, quantize_rows, sat, scale_apply, scale_from_float, scale_norm
from ...ops.linear import linear
from ...ops.norm import rmsnorm_dyn
from ...ops.rope import rope, tables as rope_tables
from ...ops.swiglu import swiglu
from .checkpoint import LlamaConfig, LlamaWeights, QuantizedTensor
from .sampling import SamplerParams, XorShiftRng, generate_tokens, sample

MATS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


@dataclass(frozen=True)
class Design:
    """The choices the study compares (defaults: the chosen design)."""

    weight_scales: str = "group"  # "group": Q8_0 scales kept; "channel": requantized per row
    kv_scales: str = "channel"  # int8 KV cache scale per "channel", "head" or "tensor"
    static_acts: tuple[str, ...] = ()  # sites with a calibrated static int8 scale: "wo_in", "w2_in"
    residual_bits: int = 16
    softmax_bits: int = 16  # probabilities in Q15 (16) or Q7 (8)
    act_bits: int = 8  # matmul inputs; 16 is a diagnostic (the cost of int8 activations)
    int16_headroom: float = 2.0  # static int16 scales cover this many times the calibrated absmax


@dataclass
class Calibration:
    """Absolute maxima of float activations over calibration text (per layer unless noted)."""

    x: float  # residual stream, all layers
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    h1: np.ndarray
    h3: np.ndarray
    att: np.ndarray  # wo input
    g: np.ndarray  # w2 input
    k_ch: np.ndarray  # [L, kv_dim], rotated keys
    v_ch: np.ndarray  # [L, kv_dim]


def calibrate(model, sequences) -> Calibration:
    """Run the float model (``FloatLlama``) over token sequences and record activation ranges."""
    tr: dict = {}
    for seq in sequences:
        model.forward_many(seq, 0, trace=tr)
    L = model.cfg.n_layers
    stack = lambda k: [np.concatenate(tr[k][l::L]) for l in range(L)]  # noqa: E731
    amax = lambda k: np.array([np.abs(a).max() for a in stack(k)])  # noqa: E731
    both = lambda a, b: np.maximum(amax(a), amax(b))  # noqa: E731
    res = max(float(np.abs(np.concatenate(tr[k])).max()) for k in ("x", "x_mid", "x_final"))
    return Calibration(res, both("q", "q_pre"), both("k", "k_pre"), amax("v"), amax("h1"),
                       amax("h3"), amax("att"), amax("g"),
                       np.stack([np.abs(a).max(axis=0) for a in stack("k")]),
                       np.stack([np.abs(a).max(axis=0) for a in stack("v")]))


def _pow2_exp(absmax: float, bits: int, headroom: float) -> int:
    """a such that headroom * absmax fits in a signed ``bits`` integer at scale 2^-a."""
    return math.floor(math.log2(((1 << (bits - 1)) - 1) / (headroom * max(absmax, 1e-12))))


def _mantissas(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Positive floats -> int mantissas < 2^15 sharing one exponent E (value ~ mantissa * 2^-E)."""
    E = 14 - math.floor(math.log2(max(float(np.max(np.abs(values))), 1e-30)))
    m = np.floor(np.asarray(values, np.float64) * 2.0**E + 0.5).astype(I64)
    if np.abs(m).max() >= 1 << 15:
        E -= 1
        m = np.floor(np.asarray(values, np.float64) * 2.0**E + 0.5).astype(I64)
    return m, E


def _int_matrix(qt: QuantizedTensor, design: Design):
    """One [rows, cols] Q8_0 matrix -> (w8, mw with the shape of w8, Ew)."""
    if design.weight_scales == "group":
        m, E = _mantissas(qt.scales)
        return qt.q.astype(I64), np.repeat(m, qt.group_size).reshape(qt.q.shape), E
    w = qt.dequantize().astype(np.float64)  # requantize per output row (double rounding)
    s = np.abs(w).max(axis=1) / 127.0
    w8 = np.floor(w / np.where(s > 0, s, 1)[:, None] + 0.5).astype(I64)
    m, E = _mantissas(s)
    return w8, np.broadcast_to(m[:, None], w8.shape), E


class IntLlama:
    """Integer model with an int8 KV cache; ``forward_many`` returns int32 Q8 logits."""

    def __init__(self, cfg: LlamaConfig, w: LlamaWeights, calib: Calibration,
                 design: Design = Design(), seq_len: int | None = None):
        if not w.quantized:
            raise ValueError("IntLlama needs the int8 weights of a version-2 (Q8_0) checkpoint")
        self.cfg, self.d, self.seq_len = cfg, design, seq_len or cfg.seq_len
        L, hs, c = cfg.n_layers, cfg.head_size, {}
        sf = scale_from_float
        self.rb = design.residual_bits
        self.qmax = (1 << (design.act_bits - 1)) - 1
        self.a_res = _pow2_exp(calib.x, self.rb, design.int16_headroom)
        s_res = 2.0 ** -self.a_res
        # weights: W_eff = w8 * mw is exact in float64 (< 2^30), so int_matmul stays exact
        qt = w.quantized
        w8, mw, E = _int_matrix(qt["token_embedding"], design)
        self.emb, self.emb_ew = (w8 * mw).astype(np.float64), E
        self.qw = {"emb": (w8.astype(np.int8), mw.reshape(-1)[::qt["token_embedding"].group_size])}
        self.cls = self.emb if cfg.shared_classifier else None
        self.qw["cls"] = self.qw["emb"]
        if self.cls is None:
            w8c, mwc, self.cls_ew = _int_matrix(qt["wcls"], design)
            self.cls = (w8c * mwc).astype(np.float64)
            self.qw["cls"] = (w8c.astype(np.int8), mwc.reshape(-1)[::qt["wcls"].group_size])
        else:
            self.cls_ew = E
        c["emb"] = sf(2.0**-E / s_res)
        self.W = {n: [] for n in MATS}
        self.Ew = {n: [] for n in MATS}
        for n in MATS:
            for l in range(L):
                a, b, e = _int_matrix(QuantizedTensor(qt[n].q[l], qt[n].scales[l], qt[n].group_size),
                                      design)
                self.W[n].append((a * b).astype(np.float64))
                self.qw[n, l] = (a.astype(np.int8), b.reshape(-1)[::qt[n].group_size])
                self.Ew[n].append(e)
        # RMSNorm: gamma mantissas, epsilon in units of x^2, constant part of the vector scale
        n = cfg.dim
        self.epsn = round(n * cfg.norm_eps / s_res**2)
        self.G = {}
        for name, g in [("att", w.rms_att), ("ffn", w.rms_ffn), ("final", w.rms_final[None])]:
            for l in range(len(g)):
                m, Eg = _mantissas(g[l])
                self.G[name, l] = m
                c["norm", name, l] = sf(math.sqrt(n) * 2.0**-Eg / self.qmax)
        # static int16 exponents and the per-channel int8 KV scales
        hr = design.int16_headroom
        self.a = {k: [_pow2_exp(v, 16, hr) for v in getattr(calib, k)]
                  for k in ("q", "k", "v", "h1", "h3")}
        if min(self.a["h1"]) < 5:  # the SiLU table needs 5 fractional bits
            l = int(np.argmin(self.a["h1"]))
            raise TinydeployError(f"layer {l}: w1 outputs reach {calib.h1[l]:.4g} on calibration text; the "
                                  f"integer SiLU takes at most {2**15 / 2**5 / design.int16_headroom:g}")
        self.cos, self.sin = rope_tables(hs, self.seq_len, cfg.rope_theta)
        self.kq, self.vq, self.mk, self.mv = [], [], [], []
        for l in range(L):
            # a channel never seen non-zero gets a tiny scale rather than a division by zero
            sk = np.maximum(self._kv_group(calib.k_ch[l]), 1e-6) / 127
            sv = np.maximum(self._kv_group(calib.v_ch[l]), 1e-6) / 127
            self.kq.append(scale_norm(*np.array([sf(2.0**-self.a["k"][l] / s) for s in sk]).T))
            self.vq.append(scale_norm(*np.array([sf(2.0**-self.a["v"][l] / s) for s in sv]).T))
            mk, ek = _mantissas(sk)
            mv, ev = _mantissas(sv)
            self.mk.append(mk), self.mv.append(mv)
            c["score", l] = sf(2.0**-self.a["q"][l] * 2.0**-ek / 32767 / math.sqrt(hs)
                               * math.log2(math.e) * 256)
            p_unit = 2.0 ** -(design.softmax_bits - 1)
            c["a_unit", l] = p_unit * 2.0**-ev
            for k, S in [("wq", 2.0**-self.a["q"][l]), ("wk", 2.0**-self.a["k"][l]),
                         ("wv", 2.0**-self.a["v"][l]), ("wo", s_res),
                         ("w1", 2.0**-self.a["h1"][l]), ("w3", 2.0**-self.a["h3"][l]),
                         ("w2", s_res)]:
                c["out", k, l] = sf(2.0**-self.Ew[k][l] / S)
            g_unit = 2.0 ** -(self.a["h1"][l] + self.a["h3"][l])
            for site, unit, amax in [("wo_in", c["a_unit", l], calib.att[l]),
                                     ("w2_in", g_unit, calib.g[l])]:
                c["dyn", site, l] = sf(unit / self.qmax)
                c["static_q", site, l] = sf(unit / (amax / self.qmax))  # x -> x8, static scale
                c["static_f", site, l] = sf(amax / self.qmax)
        c["logits"] = sf(2.0**-self.cls_ew * 256)
        self.c = c
        self.key_cache = np.zeros((L, self.seq_len, cfg.kv_dim), I64)
        self.value_cache = np.zeros((L, self.seq_len, cfg.kv_dim), I64)

    def _kv_group(self, amax_ch: np.ndarray) -> np.ndarray:
        """Per-channel absmax -> the absmax each channel's scale uses under the chosen grouping."""
        hs = self.cfg.head_size
        if self.d.kv_scales == "head":
            return np.repeat(amax_ch.reshape(-1, hs).max(axis=1), hs)
        if self.d.kv_scales == "tensor":
            return np.full_like(amax_ch, amax_ch.max())
        return amax_ch

    # ------------------------------------------------------------------ target side (integers)

    def _rmsnorm_q8(self, x, name: str, l: int):
        """int8 input of the matmul after RMSNorm and its per-row vector scale F."""
        return rmsnorm_dyn(x, self.G[name, l], self.epsn, self.c["norm", name, l], self.qmax)

    def _site_q8(self, x, site: str, l: int):
        """int8 matmul input at a site with a static unit: per-vector absmax, or static scale."""
        if site in self.d.static_acts:
            x8 = sat(scale_apply(x, self.c["static_q", site, l]), self.d.act_bits)
            m, e = self.c["static_f", site, l]
            return x8, (np.full(len(x), m, I64), np.full(len(x), e, I64))
        return quantize_rows(x, self.c["dyn", site, l], self.qmax)

    def _mm(self, x8, F, name: str, l: int, bits: int):
        """matmul + output requantization to the static scale of (name, l), saturated to bits."""
        return linear(x8, F, self.W[name][l], self.c["out", name, l], bits)

    def forward_many(self, tokens, start_pos: int) -> np.ndarray:
        """int32 Q8 logits [T, vocab] for tokens at positions start_pos.. (prefill or one step)."""
        cfg, c, rb = self.cfg, self.c, self.rb
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        T, end = len(tokens), start_pos + len(tokens)
        assert 0 < T and 0 <= start_pos and end <= self.seq_len
        hs = cfg.head_size
        cos, sin = self.cos[start_pos:end], self.sin[start_pos:end]
        x = embed(self.emb, tokens, c["emb"], rb)
        for l in range(cfg.n_layers):
            xb, F = self._rmsnorm_q8(x, "att", l)
            q = rope(self._mm(xb, F, "wq", l, 16), cos, sin, hs)
            k = rope(self._mm(xb, F, "wk", l, 16), cos, sin, hs)
            v = self._mm(xb, F, "wv", l, 16)
            k8, v8 = att.kv_store(k, v, self.kq[l], self.vq[l])
            self.key_cache[l, start_pos:end], self.value_cache[l, start_pos:end] = k8, v8
            a = att.attention(q, self.key_cache[l, :end], self.value_cache[l, :end], start_pos,
                              self.mk[l], self.mv[l], c["score", l], hs, self.d.softmax_bits)
            a8, Fa = self._site_q8(a, "wo_in", l)
            x = sat(x + self._mm(a8, Fa, "wo", l, rb), rb)
            xb, F = self._rmsnorm_q8(x, "ffn", l)
            h1 = self._mm(xb, F, "w1", l, 16)
            h3 = self._mm(xb, F, "w3", l, 16)
            g8, Fg = self._site_q8(swiglu(h1, h3, self.a["h1"][l]), "w2_in", l)
            x = sat(x + self._mm(g8, Fg, "w2", l, rb), rb)
        xb, F = self._rmsnorm_q8(x, "final", 0)
        return linear(xb, F, self.cls, c["logits"], 32)

    def forward(self, token: int, pos: int) -> np.ndarray:
        return self.forward_many([token], pos)[0]

    def generate(self, prompt_ids=(), steps: int = 256, temperature: float = 0.0,
                 top_p: float = 0.9, seed: int = 0) -> list[int]:
        """As ``FloatLlama.generate``, on the integer logits (greedy: first maximum)."""
        params, rng = SamplerParams.from_float(temperature, top_p), XorShiftRng(seed)
        return generate_tokens(self, prompt_ids, steps, lambda logits: sample(logits, params, rng))
