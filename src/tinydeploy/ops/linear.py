"""QLinearDyn: a linear layer on int8 rows with run-time scales, weights with per-group scales.

    inputs  x8 int8 [T, K], F int32 [T, 2] (row t is x8[t] * F[t]), n (row count, optional),
            w8 int8 [N, K], mw int16 [ceil(N K / group)] (group mantissas over the flattened w8)
    attrs   c = (m, e) compile-time scale, bits (16: int16 output, 32: int32), group (32)
    acc_tj  = sum_g mw_g sum_{i in g} x8_ti w8_ji            (exact; |acc| < 2^42)
    y_tj    = sat_bits(requant(acc_tj, F_t * c))               one rounding; F_t * c formed at run time

The weight scale of group g is mw_g * 2^-Ew (Ew folded into c), as llama2.c's Q8_0 format stores
it: groups run over the flattened tensor, so a group may straddle two rows. Row-wise (a prefill of
T rows or a decode step of n = 1). C kernel: runtime/kernels/linear_dyn.h (4 or 8 weight rows per
pass; requantization in 32-bit words on RV32).
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from .intmath import I64, int_matmul, sat, scale_apply, scale_mul
from .registry import register

GROUP = 32  # the C kernel's group size (llama2.c Q8_0)
_WEFF: dict[int, tuple] = {}


def effective_weight(w8: np.ndarray, mw_groups: np.ndarray, group: int = GROUP) -> np.ndarray:
    """w8 [rows, cols] times the mantissa of its group over the flattened tensor -> float64 (exact:
    |w8 * mw| < 2^22)."""
    return (w8.astype(I64) * np.repeat(np.asarray(mw_groups, I64), group)[:w8.size].reshape(w8.shape)
            ).astype(np.float64)


def cached_weight(w8, mw, group: int = GROUP) -> np.ndarray:
    """effective_weight of a constant, computed once per array (goldens run many times)."""
    hit = _WEFF.get(id(w8))
    if hit is None or hit[0] is not w8:
        hit = _WEFF[id(w8)] = (w8, effective_weight(w8, mw, group))
    return hit[1]


def linear(x8, F, W_eff, c, bits: int):
    """y = sat_bits(requant(x8 @ W_eff.T, F * c)); F = (m [T], e [T]) row scales."""
    acc = int_matmul(x8, W_eff)  # |acc| < 2^42: int64 in C
    s = scale_mul((np.asarray(F[0])[:, None], np.asarray(F[1])[:, None]), c)
    return sat(scale_apply(acc, s), bits)


def row_scales(F) -> tuple[np.ndarray, np.ndarray]:
    """The (m, e) pair arrays of a row-scale tensor F [T, 2]."""
    F = np.asarray(F, I64)
    return F[:, 0], F[:, 1]


def scale_tensor(F) -> np.ndarray:
    """Row scales (m [T], e [T]) as the int32 [T, 2] tensor the ops pass along."""
    return np.stack([np.asarray(F[0], I64), np.asarray(F[1], I64)], axis=-1).astype(np.int32)


def c_scale(s) -> str:
    """A compile-time scale as a C td_scale literal."""
    return f"(td_scale){{{int(s[0])}, {int(s[1])}}}"


def _emit(node, g, ctx):
    x8, F, _, w8, mw = node.inputs
    N, K = g.tensors[w8].shape
    a = node.attrs
    if a.get("group", GROUP) != GROUP or a["bits"] not in (16, 32):
        raise TinydeployError(f"node {node.name} (QLinearDyn): the C kernel takes groups of {GROUP} and "
                              f"16- or 32-bit outputs")
    return (f"td_linear_dyn({ctx.ptr(x8)}, {ctx.ptr(F)}, {ctx.rows(node)}, {ctx.ptr(w8)}, {ctx.ptr(mw)}, "
            f"{N}, {K}, {c_scale(a['c'])}, {a['bits']}, {ctx.ptr(node.outputs[0])}, {int(a['bits'] > 16)});")


def _macs(node, g):
    T, N = g.tensors[node.outputs[0]].shape
    return T * N * g.tensors[node.inputs[3]].shape[1]


@register("QLinearDyn", emit=_emit, macs=_macs, rows=2, header="linear_dyn.h")
def qlinear_dyn(node, graph, args):
    x8, F, _, w8, mw = args
    a = node.attrs
    y = linear(x8, row_scales(F), cached_weight(w8, mw, a.get("group", GROUP)), a["c"], a["bits"])
    return [y.astype(np.int32 if a["bits"] > 16 else np.int16)]
