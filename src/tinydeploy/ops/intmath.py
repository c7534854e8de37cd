"""Run-time scales: the fixed-point arithmetic of the integer ops whose activation scales are
computed on the target (per row, from the row's own absmax), in numpy; runtime/kernels/td_dynq.h is
the C twin. Every function is exact integer arithmetic on int64; tables and compile-time constants
are computed on the host in float64 and stored as integers.

A *scale* (m, e) is the multiplier/shift pair of ops/quant.py applied the same way, one rounding
half up: ``rshift_round(x * m, e) = (x * m + 2^(e-1)) >> e`` (``x << -e`` for e <= 0).
Compile-time multipliers (``quant.quantize_multiplier``) carry a 31-bit mantissa: they scale an
int32 accumulator once. Run-time scales are products of a per-row absmax and a compile-time scale,
formed on the target, so they are normalised to a 15-bit mantissa (2^14 <= m < 2^15): the product
of two scales then fits 32 bits, ``x * m`` stays within 64 bits for |x| < 2^47, and the RV32
kernels can apply them in 32-bit words (td_dynq.h). Same formula, two mantissa widths.
"""

from __future__ import annotations

import math

import numpy as np

from .quant import requant, rshift_round

I64 = np.int64
QSHIFT = 47  # reciprocal precision of quantize_vec: |x * r| <= qmax * 2^47 < 2^63
MANT_BITS = 15


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
    return requant(x, s[0], s[1])


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


def quantize_rows(x, c, qmax: int):
    """Per-row quantization of an integer tensor whose unit is the compile-time scale c:
    (x8, F) with F = M * c the row's run-time scale (M its absmax), x ~ x8 * F."""
    x8, M = quantize_vec(x, qmax)
    return x8, scale_mul(scale_norm(M, 0), c)


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
