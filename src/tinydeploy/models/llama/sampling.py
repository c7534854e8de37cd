"""Deterministic integer sampling: the specification the C runtime copies bit for bit.

Everything a target runs is integer arithmetic on unsigned 64-bit values; the two float parameters
(temperature, top-p) are turned into integers once, on the host.

RNG (xorshift64*), state ``s`` a uint64:
    seed:      s = seed mod 2^64, or 0x9E3779B97F4A7C15 when that is 0 (xorshift must not start at 0)
    next_u32:  s ^= s >> 12;  s ^= s << 25;  s ^= s >> 27        (all mod 2^64)
               return (s * 0x2545F4914F6CDD1D mod 2^64) >> 32
One ``next_u32`` is drawn per sampled token; greedy decoding draws none.

Logits are int32 in "Q8 logit units": real logit = l / 256. The float reference converts with
l = floor(256 * x + 0.5); an integer model requantizes its classifier accumulators to this unit.

Host-side parameters:
    temperature T = 0           -> greedy: the first index of the maximum logit (T must be finite, >= 0).
    k = round(65536 * log2(e) / T), clamped to [1, 2^31 - 1]      (Q16, log2 units per logit unit/256)
    P = round(65536 * top_p), top_p in [0, 1]; P = 0 or P = 65536 disables top-p  (Q16)

Per token, with m = max_i l_i:
    d_i = min(m - l_i, 2^24 - 1)                     (uint64; d_i >= 0)
    e_i = (d_i * k + 128) >> 8                       (Q16 exponent: weight = 2^(-e_i / 65536))
    n_i = e_i >> 16,  f_i = (e_i >> 8) & 255
    w_i = n_i > 16 ? 0 : EXP2_Q16[f_i] >> n_i        (so the maximum logit weighs exactly 65536)
    EXP2_Q16[j] = floor(65536 * 2^(-j / 256) + 0.5), j = 0..255  (a 256-entry uint32 table)
    W = sum_i w_i  (< 2^32 for vocabularies under 65,536 tokens)
Candidates:
    top-p off: every token, in index order, C = W.
    top-p on:  tokens ordered by weight descending, ties by lower index first; keep the shortest
               prefix whose cumulative weight c satisfies c * 65536 >= P * W; C = c of that prefix.
Draw:
    u = next_u32();  r = (u * C) >> 32                  (uint64 product; 0 <= r < C)
    walk the candidates in order, cum += w_i; the sample is the first token with r < cum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinydeploy.errors import TinydeployError

_MASK64 = (1 << 64) - 1
_DEFAULT_STATE = 0x9E3779B97F4A7C15
_MULT = 0x2545F4914F6CDD1D
LOGIT_FRAC_BITS = 8  # Q8 logit units
EXP2_Q16 = np.array([math.floor(65536 * 2.0 ** (-j / 256) + 0.5) for j in range(256)], np.uint64)


class XorShiftRng:
    """xorshift64* as specified above; Python ints keep the uint64 arithmetic exact."""

    def __init__(self, seed: int):
        self.state = (seed & _MASK64) or _DEFAULT_STATE

    def next_u32(self) -> int:
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & _MASK64
        s ^= s >> 27
        self.state = s
        return ((s * _MULT) & _MASK64) >> 32


@dataclass(frozen=True)
class SamplerParams:
    """The integer form of (temperature, top_p), computed once on the host."""

    greedy: bool
    inv_temp_q16: int  # k
    top_p_q16: int  # P

    @classmethod
    def from_float(cls, temperature: float, top_p: float = 1.0) -> "SamplerParams":
        if not 0 <= temperature < math.inf:  # also refuses NaN
            raise TinydeployError(f"--temperature must be a finite number >= 0 (0: greedy), got {temperature}")
        if not 0 <= top_p <= 1:
            raise TinydeployError(f"--top-p must be in 0..1 (0 or 1: off), got {top_p}")
        if temperature == 0:
            return cls(True, 0, 0)
        k = max(round(min(65536 * math.log2(math.e) / temperature, 2**31 - 1)), 1)  # clamp first: a tiny T gives inf
        return cls(False, k, round(65536 * top_p))

    @property
    def uses_top_p(self) -> bool:
        return 0 < self.top_p_q16 < 65536


def logits_to_q8(logits: np.ndarray) -> np.ndarray:
    """Float logits -> int32 Q8 logit units (floor(256 x + 0.5), saturated to int32)."""
    q = np.floor(np.asarray(logits, np.float64) * (1 << LOGIT_FRAC_BITS) + 0.5)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def weights_q16(logits_q8: np.ndarray, inv_temp_q16: int) -> np.ndarray:
    """Unnormalised integer probabilities w_i (uint64 array), exactly as in the module docstring."""
    l = np.asarray(logits_q8, np.int64)
    d = np.minimum(l.max() - l, 2**24 - 1).astype(np.uint64)
    e = (d * np.uint64(inv_temp_q16) + np.uint64(128)) >> np.uint64(8)
    n = e >> np.uint64(16)
    f = (e >> np.uint64(8)) & np.uint64(255)
    w = EXP2_Q16[f] >> np.minimum(n, np.uint64(63))
    return np.where(n > 16, np.uint64(0), w)


def sample(logits_q8: np.ndarray, params: SamplerParams, rng: XorShiftRng) -> int:
    """Next token from int32 Q8 logits; consumes one RNG draw unless greedy."""
    if params.greedy:
        return int(np.argmax(logits_q8))  # numpy's argmax returns the first maximum, like C's '>'
    w = weights_q16(logits_q8, params.inv_temp_q16)
    if params.uses_top_p:
        order = np.argsort(-w.astype(np.int64), kind="stable")  # weight desc, then index asc
        cum = np.cumsum(w[order])
        total = int(cum[-1])
        keep = int(np.argmax(cum * np.uint64(65536) >= np.uint64(params.top_p_q16 * total))) + 1
        order, cum = order[:keep], cum[:keep]
    else:
        order, cum = np.arange(len(w)), np.cumsum(w)
    r = (rng.next_u32() * int(cum[-1])) >> 32
    return int(order[int(np.searchsorted(cum, np.uint64(r), side="right"))])


def generate_tokens(model, prompt_ids, steps: int, pick) -> list[int]:
    """The generation loop shared by the float and the integer model (and mirrored by the C main):
    prefill the prompt (empty means [BOS]), then `pick(logits)` a token per step; stop after `steps`
    new tokens, when the model emits BOS (1, not returned, as llama2.c does) or at the context end.
    `model` has `forward_many(tokens, start_pos)`, `forward(token, pos)` and `seq_len`."""
    prompt = [int(t) for t in prompt_ids] or [1]
    logits, out = model.forward_many(prompt, 0)[-1], []
    while len(out) < steps:
        nxt = pick(logits)
        if nxt == 1:
            break
        out.append(nxt)
        pos = len(prompt) + len(out) - 1
        if len(out) == steps or pos >= model.seq_len:
            break
        logits = model.forward(nxt, pos)
    return out
