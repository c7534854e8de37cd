"""Integer primitives of the all-integer llama design (numpy golden; the C runtime copies them).

Every function here is exact integer arithmetic on int64 (no float on the run-time path); tables
and static constants are computed once on the host in float64 and stored as integers.

Rounding: ``rshift_round(x, s) = (x + 2^(s-1)) >> s`` for s > 0 (arithmetic shift = floor, so this
is round half up, also for negatives: -2.5 -> -2), and ``x << -s`` for s <= 0.

A *scale* is an integer pair (m, e) meaning the real number m * 2^-e; normalised scales have
2^14 <= m < 2^15 (15-bit mantissa), e any integer. Applying it to an integer x: rshift_round(x*m, e).
"""

from __future__ import annotations

import math

import numpy as np

I64 = np.int64
QSHIFT = 47  # reciprocal precision of quantize_vec: |x * r| <= qmax * 2^47 < 2^63
MANT_BITS = 15


def rshift_round(x, s):
    """Round-half-up right shift by s (s <= 0: left shift). Elementwise, broadcasting."""
    x, s = np.asarray(x, I64), np.asarray(s, I64)
    if np.all(s > 0):  # the common case, without the masking below
        return (x + np.left_shift(I64(1), s - 1)) >> s
    sr = np.maximum(s, 0)
    half = np.where(s > 0, np.left_shift(I64(1), np.maximum(sr - 1, 0)), 0)
    return np.where(s > 0, np.right_shift(x + half, sr), np.left_shift(x, np.maximum(-s, 0)))


def bitlen(v):
    """Number of bits of non-negative int64 values (0 for 0), exact (C: 32 - clz, or a loop)."""
    v = np.array(v, I64, copy=True)
    b = np.zeros(v.shape, I64)
    for sh in (32, 16, 8, 4, 2, 1):
        big = v >= (I64(1) << sh)
        b += np.where(big, sh, 0)
        v = np.where(big, v >> sh, v)
    return b + (v > 0)


def scale_norm(m, e):
    """Normalise (m, e), m >= 0, to a 15-bit mantissa: rounding half up; m = 0 gives (0, 0)."""
    m, e = np.asarray(m, I64), np.asarray(e, I64)
    sh = np.where(m > 0, bitlen(m) - MANT_BITS, 0)
    m2 = rshift_round(m, sh)
    carry = m2 >= (1 << MANT_BITS)  # rounding up to 2^15: halve once more (exact)
    m2 = np.where(carry, m2 >> 1, m2)
    e2 = e - sh - carry
    return m2, np.where(m > 0, e2, 0)


def scale_mul(a, b):
    """Product of two scales (each a pair (m, e)), normalised."""
    return scale_norm(a[0] * b[0], a[1] + b[1])


def scale_from_float(v: float) -> tuple[int, int]:
    """Host side: the normalised scale nearest to v > 0 (compile-time constant)."""
    if v <= 0:
        raise ValueError("scale must be positive")
    e = MANT_BITS - 1 - math.floor(math.log2(v))
    m, e = scale_norm(round(v * 2.0**e), e)
    return int(m), int(e)


def scale_to_float(s) -> float:
    return float(s[0]) * 2.0 ** -float(s[1])


def scale_apply(x, s):
    """rshift_round(x * m, e); x and the scale broadcast (per-row scales: m, e of shape [..., 1]).
    C: the product is int64 (checked here: numpy would wrap silently)."""
    x = np.asarray(x, I64)
    assert int(np.abs(x).max(initial=0)) * int(np.max(s[0])) < 1 << 62, "scale_apply overflow"
    return rshift_round(x * s[0], s[1])


def quantize_vec(x, qmax: int = 127):
    """Per-vector symmetric quantization over the last axis from the vector's own absmax M.

        M = max_i |x_i|;  r = (qmax << 47) // M  (one division per vector; M = 0 gives zeros)
        q_i = (x_i * r + 2^46) >> 47            in [-qmax, qmax]
    q_i * M / qmax approximates x_i (the scale error of r is below 2^-20 for M < 2^40).
    Returns (q, M) with M of shape x.shape[:-1]."""
    x = np.asarray(x, I64)
    M = np.abs(x).max(axis=-1)
    assert M.max(initial=0) < (I64(1) << 40), "quantize_vec input too large"
    r = (I64(qmax) << QSHIFT) // np.maximum(M, 1)
    q = np.right_shift(x * r[..., None] + (I64(1) << (QSHIFT - 1)), QSHIFT)
    return np.clip(q, -qmax, qmax), M


def isqrt_floor(t):
    """floor(sqrt(t)) of non-negative int64 values (C: the bit-by-bit integer square root)."""
    t = np.asarray(t, I64)
    return np.array([math.isqrt(int(v)) for v in t.reshape(-1)], I64).reshape(t.shape)


def inv_sqrt_scale(T):
    """The scale (m, e) of 1/sqrt(T) for int64 T >= 1.

        d = bitlen(T) - 29, rounded up to even;  t = T >> d (T << -d if d < 0), t in [2^28, 2^30)
        s = isqrt_floor(t) in [2^14, 2^15);      1/sqrt(T) = 2^(-d/2) / s
        (m, e) = scale_norm((2^44 + s // 2) // s, 44 + d / 2)
    Relative error below 2^-13 (from the floor of t and of the square root)."""
    T = np.asarray(T, I64)
    d = bitlen(T) - 29
    d = d + (d & 1)
    t = np.where(d >= 0, np.right_shift(T, np.maximum(d, 0)), np.left_shift(T, np.maximum(-d, 0)))
    s = isqrt_floor(t)
    return scale_norm(((I64(1) << 44) + s // 2) // s, 44 + d // 2)


# ----------------------------------------------------------------------------- tables (host)

EXP_FRAC_BITS = 8  # exponent resolution of the exp2 table: 1/256 octave
EXP2_Q15 = np.array([math.floor(32768 * 2.0 ** (-j / 256) + 0.5) for j in range(256)], I64)


def exp2_neg_q15(e8):
    """2^(-e8 / 256) in Q15 for integer e8 >= 0: EXP2_Q15[e8 & 255] >> (e8 >> 8), 0 beyond 2^-15."""
    e8 = np.asarray(e8, I64)
    n = e8 >> EXP_FRAC_BITS
    return np.where(n > 15, 0, EXP2_Q15[e8 & 255] >> np.minimum(n, 15))


SIG_STEP_BITS = 5  # table step 1/32
SIG_RANGE = 16  # covers [-16, 16]; saturates outside
SIGMOID_Q15 = np.array([math.floor(32768 / (1 + math.exp(-(i / 32 - SIG_RANGE))) + 0.5)
                        for i in range(2 * SIG_RANGE * 32 + 1)], I64)


def sigmoid_q15(h, frac_bits: int):
    """sigmoid of h * 2^-frac_bits in Q15, by the 1025-entry table with linear interpolation.

        k = frac_bits - 5 (>= 0): idx = (h >> k) + 512, f = h & (2^k - 1)
        idx < 0 -> 0; idx >= 1024 -> 32768;
        else T[idx] + rshift_round((T[idx+1] - T[idx]) * f, k)"""
    h = np.asarray(h, I64)
    k = frac_bits - SIG_STEP_BITS
    assert k >= 0, "SiLU input needs at least 5 fractional bits"
    idx = (h >> k) + SIG_RANGE * 32
    f = h & ((1 << k) - 1)
    i = np.clip(idx, 0, len(SIGMOID_Q15) - 2)
    lo, hi = SIGMOID_Q15[i], SIGMOID_Q15[i + 1]
    val = lo + rshift_round((hi - lo) * f, k)
    return np.where(idx < 0, 0, np.where(idx >= len(SIGMOID_Q15) - 1, 32768, val))


ROPE_BITS = 14


def rope_tables_q14(head_size: int, seq_len: int, theta: float = 10000.0):
    """cos/sin [seq_len, head_size/2] in Q14 (round half up), frequency 1/theta^(2i/head_size)."""
    freq = 1.0 / theta ** (np.arange(0, head_size, 2) / head_size)
    ang = np.arange(seq_len)[:, None] * freq[None, :]
    return (np.floor(np.cos(ang) * 2**ROPE_BITS + 0.5).astype(I64),
            np.floor(np.sin(ang) * 2**ROPE_BITS + 0.5).astype(I64))


def rope_q14(v, cos, sin, head_size: int):
    """Rotate consecutive pairs of each head: v [T, n*head_size] int, cos/sin [T, head_size/2]."""
    T = v.shape[0]
    p = np.asarray(v, I64).reshape(T, -1, head_size // 2, 2)
    c, s = cos[:, None, :], sin[:, None, :]
    a = rshift_round(p[..., 0] * c - p[..., 1] * s, ROPE_BITS)
    b = rshift_round(p[..., 0] * s + p[..., 1] * c, ROPE_BITS)
    return np.stack([a, b], axis=-1).reshape(v.shape)


def sat(x, bits: int):
    """Saturate to a signed ``bits``-bit integer."""
    lim = (1 << (bits - 1)) - 1
    return np.clip(x, -lim - 1, lim)


def int_matmul(x, w):
    """Exact integer x [..., n] @ w.T ([m, n]) -> int64. float64 BLAS is exact while every partial
    sum stays below 2^53 (checked: max|x| * n * max|w|), and far faster than numpy's int matmul."""
    return int_bmm(x, np.swapaxes(w, -1, -2))


def int_bmm(a, b):
    """Exact integer (batched) matrix product a @ b -> int64, through float64 (see int_matmul)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    bound = np.abs(a).max(initial=0) * np.abs(b).max(initial=0) * a.shape[-1]
    assert bound < 2.0**53, "integer matmul operands too large for exact float64"
    return (a @ b).astype(I64)
