"""Compile-time tables of the register-blocked kernels in runtime/kernels/td_fast.h.

`rq_table` builds one {bias, m, rnd, sh} record per output channel: the bias with every zero-point
term folded in, and the requantization rewritten as (mulh(acc, m) + rnd) >> sh with y_zp inside rnd.
It returns None when that rewrite is not exact (S < 33, or an int32 overflow is possible), and the
caller keeps the reference kernel. The fast paths are used where the target's kernel description
allows them (`ctx.kernels.fast`, ops/kernels.py).
"""
from __future__ import annotations

import numpy as np

from .kernels import Choice, Kernels

INT32_MAX = 2**31 - 1


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
    """A constant td_rq_t array of the table's records; returns its C expression."""
    return ctx.records(hint, "td_rq_t", table)


def qconv(node, graph, g: dict, k: Kernels) -> Choice | None:
    """td_conv_fast for stride-1 undilated ungrouped QConv with K % 4 == 0."""
    a = node.attrs
    w = graph.const(node.inputs[1])
    if g["G"] > 1 and g["G"] == g["C"] == g["K"]:
        return qconv_dw(node, graph, g, k)
    if (g["KH"], g["KW"], g["SH"], g["SW"], g["PT"], g["PL"], g["PB"], g["PR"]) == (1, 1, 1, 1, 0, 0, 0, 0):
        # a pointwise conv is one row of OH * OW pixels: its 4-pixel blocks run across the rows
        g = {**g, "H": 1, "W": g["H"] * g["W"], "OH": 1, "OW": g["OH"] * g["OW"]}
    if (not k.fast or w is None or w.dtype != np.int8 or g["G"] != 1 or g["SH"] != 1 or g["SW"] != 1
            or g["DH"] != 1 or g["DW"] != 1 or g["K"] % 4 or a["w_zp"] != 0 or g["N"] != 1
            or graph.tensors[node.inputs[0]].dtype != np.int8):
        return None
    K, C, KH, KW = g["K"], g["C"], g["KH"], g["KW"]
    w4 = w.reshape(K, C, KH, KW).astype(np.int64)
    bias = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else np.zeros(K, np.int64)
    bias = np.asarray(bias, np.int64).reshape(-1) - a["x_zp"] * w4.reshape(K, -1).sum(axis=1)
    max_acc = int((np.abs(bias) + 128 * np.abs(w4).reshape(K, -1).sum(axis=1)).max())
    table = rq_table(bias, a["m"], a["s"], a["y_zp"], max_acc)
    if table is None:
        return None
    # [K/4][C][KH][KW][4]: the four output channels of a tap side by side
    wq = np.ascontiguousarray(w4.reshape(K // 4, 4, C, KH, KW).transpose(0, 2, 3, 4, 1)).astype(np.int8)
    HP, WP = g["OH"] + KH - 1, g["OW"] + KW - 1

    def emit(ctx, scratch):
        wname, qname = ctx.array(node.name + "_wq", wq), declare(ctx, node.name + "_rq", table)
        lines, x = padded(node, g, ctx.ptr(node.inputs[0]), scratch, HP, WP)
        return "\n".join(lines + [
            f"td_conv_fast({x}, {wname}, {qname}, {ctx.ptr(node.outputs[0])}, {C}, {HP}, {WP}, {K}, {g['OH']}, "
            f"{g['OW']}, {KH}, {KW}, {a['lo']}, {a['hi']});"])
    return Choice(pad_scratch(g, HP, WP), emit)


def pad_scratch(g: dict, HP: int, WP: int, always: bool = False) -> list:
    """The scratch piece of a [C][HP][WP] zero-point-padded input copy, when padding is needed."""
    return [(np.int8, g["C"] * HP * WP)] if always or (HP, WP) != (g["H"], g["W"]) or g["PT"] or g["PL"] else []


def padded(node, g: dict, x: str, scratch: list[str], HP: int, WP: int) -> tuple[list[str], str]:
    """td_pad_s8 of input x into the first scratch piece (if the choice has one); the padded input."""
    if not scratch:
        return [], x
    H, W, PT, PL = g["H"], g["W"], g["PT"], g["PL"]
    buf = scratch[0]
    return [f"td_pad_s8({x}, {buf}, {g['C']}, {H}, {W}, {PT}, {HP - H - PT}, {PL}, {WP - W - PL}, "
            f"{node.attrs['x_zp']});"], buf


def qconv_dw(node, graph, g: dict, k: Kernels) -> Choice | None:
    """td_dw3_fast: depthwise (group = C = K) 3x3, stride 1, undilated, w_zp = 0."""
    a = node.attrs
    w = graph.const(node.inputs[1])
    if (not k.fast or w is None or w.dtype != np.int8 or (g["KH"], g["KW"]) != (3, 3) or g["N"] != 1
            or (g["SH"], g["SW"], g["DH"], g["DW"]) != (1, 1, 1, 1) or a["w_zp"] != 0
            or graph.tensors[node.inputs[0]].dtype != np.int8):
        return None
    C = g["C"]
    w2 = w.reshape(C, 9).astype(np.int64)
    bias = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else np.zeros(C, np.int64)
    bias = np.asarray(bias, np.int64).reshape(-1) - a["x_zp"] * w2.sum(axis=1)
    table = rq_table(bias, a["m"], a["s"], a["y_zp"], int((np.abs(bias) + 128 * np.abs(w2).sum(axis=1)).max()))
    if table is None:
        return None
    HP, WP = g["OH"] + 2, g["OW"] + 2

    def emit(ctx, scratch):
        lines, x = padded(node, g, ctx.ptr(node.inputs[0]), scratch, HP, WP)
        wname, qname = ctx.array(node.name + "_wdw", w2.astype(np.int8)), declare(ctx, node.name + "_rq", table)
        return "\n".join(lines + [
            f"td_dw3_fast({x}, {wname}, {qname}, {ctx.ptr(node.outputs[0])}, {C}, {HP}, {WP}, "
            f"{g['OH']}, {g['OW']}, {a['lo']}, {a['hi']});"])
    return Choice(pad_scratch(g, HP, WP), emit)
