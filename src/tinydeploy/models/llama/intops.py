"""The integer layers of the llama design: ONE implementation shared by ``IntLlama.forward_many``
and the golden functions of the compiler's SLM ops (``tinydeploy.ops.llama``); the C kernels in
``runtime/kernels/llama.h`` reproduce each function bit for bit.

Every function takes integer arrays with a leading row axis (tokens) and integer constants.
A per-row vector scale ``F`` is a pair (m, e) of arrays of shape [T] (value m * 2^-e).
Weights are passed as ``W_eff = w8 * mw`` (int8 times its Q8_0 group mantissa; exact in float64),
see ``effective_weight``.
"""
from __future__ import annotations

import numpy as np

from .intmath import (I64, exp2_neg_q15, int_bmm, int_matmul, inv_sqrt_scale, quantize_vec,
                      rope_q14, rshift_round, sat, scale_apply, scale_mul, scale_norm, sigmoid_q15)


def effective_weight(w8: np.ndarray, mw_groups: np.ndarray, group: int = 32) -> np.ndarray:
    """w8 [rows, cols] times the mantissa of its group over the flattened tensor -> float64."""
    return (w8.astype(I64) * np.repeat(np.asarray(mw_groups, I64), group)[:w8.size].reshape(w8.shape)
            ).astype(np.float64)


def embed(W_eff, tokens, c_emb, bits: int):
    """Rows of the embedding at the residual scale: sat(apply(w8 * mw, C_emb))."""
    return sat(scale_apply(W_eff[np.asarray(tokens, I64)].astype(I64), c_emb), bits)


def rmsnorm_q8(x, G, epsn: int, c_norm, qmax: int):
    """int8 matmul input after RMSNorm and its per-row vector scale F (1/rms folded into F)."""
    x = np.asarray(x, I64)
    z8, M = quantize_vec(x * G, qmax)
    T = np.maximum((x * x).sum(axis=-1) + epsn, 1)
    F = scale_mul(scale_mul(scale_norm(M, 0), inv_sqrt_scale(T)), c_norm)
    return z8, F


def dyn_q8(x, c_dyn, qmax: int):
    """Per-vector quantization of a matmul input with a static unit: (x8, F)."""
    x8, M = quantize_vec(x, qmax)
    return x8, scale_mul(scale_norm(M, 0), c_dyn)


def linear(x8, F, W_eff, c_out, bits: int):
    """Q8_0 matmul and requantization to the static output scale, saturated to ``bits``."""
    acc = int_matmul(x8, W_eff)  # |acc| < 2^37: int64 in C
    s = scale_mul((np.asarray(F[0])[:, None], np.asarray(F[1])[:, None]), c_out)
    return sat(scale_apply(acc, s), bits)


def rope(v, cos, sin, head_size: int):
    """RoPE by Q14 tables (rows of cos/sin = the rows' positions), saturated to int16."""
    return sat(rope_q14(v, cos, sin, head_size), 16)


def kv_store(k, v, kq, vq):
    """int8 cache rows of rotated keys and values (per-channel scales)."""
    return sat(scale_apply(k, kq), 8), sat(scale_apply(v, vq), 8)


def attention(q, k8, v8, start_pos: int, mk, mv, c_score, head_size: int, kv_mul: int,
              softmax_bits: int):
    """Causal GQA attention of rows q [T, dim] at positions start_pos.. over the int8 caches
    k8, v8 [end, kv_dim] (already holding these rows); returns the wo input a [T, dim] (int64,
    |a| < 2^37) before its per-vector quantization (``dyn_q8``)."""
    T, end = q.shape[0], k8.shape[0]
    hs, km = head_size, kv_mul
    nkv = k8.shape[1] // hs
    nh = nkv * km
    visible = np.arange(end)[None, :] <= (start_pos + np.arange(T))[:, None]
    kc, vc = k8.reshape(end, nkv, hs), v8.reshape(end, nkv, hs)
    u = np.asarray(q, I64).reshape(T, nh, hs) * np.repeat(np.asarray(mk, I64).reshape(nkv, hs), km, axis=0)
    u16, Mu = quantize_vec(u, 32767)
    G = scale_mul(scale_norm(Mu, 0), c_score)  # [T, nh]
    kh = np.repeat(kc, km, axis=1).transpose(1, 2, 0)  # [nh, hs, end]
    acc = int_bmm(u16.transpose(1, 0, 2), kh)  # [nh, T, end]
    amax = np.where(visible, acc, np.iinfo(I64).min).max(axis=-1, keepdims=True)
    d = np.where(visible, amax - acc, 0)
    e8 = scale_apply(d, (G[0].T[..., None], G[1].T[..., None]))
    wgt = np.where(visible, exp2_neg_q15(e8), 0)  # <= 2^15 each, sum < 2^25
    recip = (I64(1) << 46) // wgt.sum(axis=-1, keepdims=True)
    p = rshift_round(wgt * recip, 46 - (softmax_bits - 1))
    vh = np.repeat(vc, km, axis=1).transpose(1, 0, 2)  # [nh, end, hs]
    o = int_bmm(p, vh)  # [nh, T, hs], |o| < 2^22
    a = o.transpose(1, 0, 2) * np.repeat(np.asarray(mv, I64).reshape(nkv, hs), km, axis=0)
    return a.reshape(T, nh * hs)


def swiglu(h1, h3, h1_frac_bits: int):
    """silu(h1) * h3 (int64, |.| < 2^30), the w2 input before ``dyn_q8``."""
    h1 = np.asarray(h1, I64)
    silu = rshift_round(h1 * sigmoid_q15(h1, h1_frac_bits), 15)
    return silu * np.asarray(h3, I64)


def residual_add(x, y, bits: int):
    return sat(np.asarray(x, I64) + np.asarray(y, I64), bits)
