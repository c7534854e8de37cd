"""QSwiGLU: the SiLU gate g = silu(h1) * h3 of int16 rows, quantized per row to int8.

    inputs  h1, h3 int16 [T, H] (units 2^-frac_bits and any), n (row count, optional),
            sig int32 [1025] (SIGMOID_Q15)
    attrs   frac_bits (of h1, >= 5), c (the unit of g / qmax), qmax
    sigmoid(h1) in Q15 by the table on [-16, 16] in steps of 1/32 with linear interpolation;
    silu = rshift_round(h1 sigmoid, 15); g = silu h3 (|g| < 2^30); (g8, F) = quantize_rows(g, c, qmax)

Row-wise; C kernel: runtime/kernels/swiglu.h (all in 32 bits).
"""
from __future__ import annotations

import math

import numpy as np

from .intmath import I64, quantize_rows
from .linear import c_scale, scale_tensor
from .quant import rshift_round
from .registry import register

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


def swiglu(h1, h3, h1_frac_bits: int):
    """silu(h1) * h3 (int64, |.| < 2^30), before its per-row quantization."""
    h1 = np.asarray(h1, I64)
    silu = rshift_round(h1 * sigmoid_q15(h1, h1_frac_bits), 15)
    return silu * np.asarray(h3, I64)


def _emit(node, g, ctx):
    h1, h3, _, sig = node.inputs
    a = node.attrs
    return (f"td_swiglu_dyn({ctx.ptr(h1)}, {ctx.ptr(h3)}, {ctx.rows(node)}, {g.tensors[h1].shape[1]}, "
            f"{a['frac_bits']}, {ctx.ptr(sig)}, {c_scale(a['c'])}, {a['qmax']}, {ctx.ptr(node.outputs[0])}, "
            f"{ctx.ptr(node.outputs[1])});")


@register("QSwiGLU", emit=_emit, rows=2, header="swiglu.h")
def qswiglu(node, graph, args):
    h1, h3, _, _ = args
    a = node.attrs
    g8, F = quantize_rows(swiglu(h1, h3, a["frac_bits"]), a["c"], a["qmax"])
    return [g8.astype(np.int8), scale_tensor(F)]
