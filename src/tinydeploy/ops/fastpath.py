"""Compile-time tables of the register-blocked kernels in runtime/kernels/td_fast.h.

`rq_table` builds one {bias, m, rnd, sh} record per output channel: the bias with every zero-point
term folded in, and the requantization rewritten as (mulh(acc, m) + rnd) >> sh with y_zp inside rnd.
It returns None when that rewrite is not exact (S < 33, or an int32 overflow is possible), and the
caller keeps the reference kernel. The fast path is off with TD_FAST=0 (for A/B measurements).
"""
from __future__ import annotations

import os

import numpy as np

INT32_MAX = 2**31 - 1


def enabled() -> bool:
    return os.environ.get("TD_FAST", "1") != "0"


def rq_table(bias: np.ndarray, mult, shift, y_zp: int, max_abs_acc: int) -> np.ndarray | None:
    """[n, 4] int32 records, or None when the fast requantization would not be bit-exact."""
    bias = np.asarray(bias, np.int64).reshape(-1)
    n = bias.size
    m = np.broadcast_to(np.asarray(mult, np.int64).reshape(-1), (n,))
    s = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), (n,))
    if np.any(s < 33) or np.abs(bias).max(initial=0) > INT32_MAX or max_abs_acc > INT32_MAX:
        return None
    sh = s - 32
    rnd = (np.int64(1) << (sh - 1)) + (np.int64(y_zp) << sh)
    p_max = (np.int64(max_abs_acc) * m >> 32) + 1
    if np.any(p_max + np.abs(rnd) > INT32_MAX):
        return None
    return np.stack([bias, m, rnd, sh], axis=1).astype(np.int32)


def declare(ctx, hint: str, table: np.ndarray) -> str:
    """`static const td_rq_t name[n] = {...}` in the network's declarations; returns the name."""
    name = ctx.ident(hint)
    rows = ",\n  ".join("{" + ", ".join(str(int(v)) for v in r) + "}" for r in table)
    ctx.decls.append(f"static const td_rq_t {name}[{len(table)}] = {{\n  {rows}\n}};")
    return name
