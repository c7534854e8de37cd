"""Fixed-point arithmetic shared by every integer kernel, in numpy, mirroring runtime/kernels/td_common.h.

requant(acc, M, S) = (acc * M + 2^(S-1)) >> S with 64-bit product: one rounding (half up). This is
the compiler's one requantization formula. A compile-time multiplier r is M * 2^-S with M in
[2^30, 2^31) (``quantize_multiplier``); scales formed at run time use the same formula with a
15-bit mantissa (ops/intmath.py says why).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TinydeployError

S_MAX = 62


def quantize_multiplier(real, what: str = "requantization") -> tuple[np.ndarray, np.ndarray]:
    """Per-element (M int32, S int32) with real ≈ M·2^-S, |error| ≤ 2^-31 relative."""
    real = np.atleast_1d(np.asarray(real, np.float64))
    if np.any(real < 0) or not np.all(np.isfinite(real)):
        raise TinydeployError(f"{what}: scale ratio must be finite and non-negative, got {real.min()}")
    mant, exp = np.frexp(real)                     # real = mant * 2^exp, mant in [0.5, 1)
    m = np.round(mant * (1 << 31)).astype(np.int64)
    carry = m == (1 << 31)
    m[carry] >>= 1
    exp = exp + carry
    s = 31 - exp.astype(np.int64)
    if np.any((s < 1) & (m > 0)):
        raise TinydeployError(f"{what}: scale ratio {real.max():.3g} is too large for fixed-point requantization")
    tiny = s > S_MAX                                # below 2^-31: shrink M so S stays representable
    m[tiny] >>= np.minimum(s[tiny] - S_MAX, 63)
    s[tiny] = S_MAX
    zero = m == 0
    s[zero] = 1
    return m.astype(np.int32), s.astype(np.int32)


def rshift_round(x, s):
    """Round-half-up right shift by s (s <= 0: left shift). Elementwise, broadcasting."""
    x, s = np.asarray(x, np.int64), np.asarray(s, np.int64)
    if np.all(s > 0):  # the common case, without the masking below
        return (x + np.left_shift(np.int64(1), s - 1)) >> s
    sr = np.maximum(s, 0)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(sr - 1, 0)), 0)
    return np.where(s > 0, np.right_shift(x + half, sr), np.left_shift(x, np.maximum(-s, 0)))


def requant(acc: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Exact C semantics: 64-bit product, add half, arithmetic shift right (S <= 0: shift left)."""
    return rshift_round(np.asarray(acc, np.int64) * np.asarray(m, np.int64), s)


def zero_point_scalar(node, graph, i: int) -> int:
    """Constant per-tensor zero point of input i (0 when omitted), as MatMulInteger/ConvInteger take it."""
    if len(node.inputs) <= i or not node.inputs[i]:
        return 0
    v = graph.const(node.inputs[i])
    if v is None or np.unique(v).size != 1:
        raise TinydeployError(f"node {node.name} ({node.op}): only constant per-tensor zero points are supported")
    return int(v.reshape(-1)[0])


def act_range(m) -> tuple[int, int]:
    """int8 clamp bounds of a lowered op's output (m: passes.lower_qdq.QdqMatch): the type range narrowed
    by a fused Relu/Clip and by an int8 Clip on the QuantizeLinear's output (m.clamp)."""
    lo, hi = -128, 127
    if m.act is not None:
        s, z = float(m.out_q.scale[0]), int(m.out_q.zero_point[0])
        flo, fhi = m.act
        if flo is not None:
            lo = max(lo, int(np.round(np.float32(flo) / np.float32(s))) + z)
        if fhi is not None:
            hi = min(hi, int(np.round(np.float32(fhi) / np.float32(s))) + z)
    clo, chi = m.clamp
    return max(lo, -128 if clo is None else clo), min(hi, 127 if chi is None else chi)


@dataclass
class BiasIn:
    """A constant added to an accumulator (a node's bias input, or an Add of a constant after it as
    tf2onnx and torch.onnx write it), flat along the output channels (length 1 or K)."""
    real: np.ndarray          # float64: what DequantizeLinear (or the float constant) gives
    ints: np.ndarray | None   # the int32 values when it is DequantizeLinear(int32, zero point 0)
    scale: np.ndarray | None  # and their scale


def bias_in(src, value) -> BiasIn | None:
    """BiasIn of a quantized source (lower_qdq.QIn) with a constant, or of a float constant `value`."""
    if src is None:
        if value is None or np.asarray(value).dtype.kind != "f":
            return None
        return BiasIn(np.asarray(value, np.float64).reshape(-1), None, None)
    if src.const is None:
        return None
    real = (src.const.astype(np.float64).reshape(-1) - src.q.zero_point) * src.q.scale.astype(np.float64)
    exact = src.const.dtype == np.int32 and not src.q.zero_point.any()
    return BiasIn(real, src.const.reshape(-1) if exact else None, src.q.scale if exact else None)
