"""Integer-exact Winograd F(2x2, 3x3) for QConv (kernel: runtime/kernels/td_winograd.h).

The golden model stays the direct convolution: this is only another C implementation whose int32
sums equal the direct ones exactly. With G' = 2 G the transformed weights U = G' g G'^T are integers
(4 U_float); V = B^T d B and A^T (sum_c U . V) A = 4 Y are integer too, and the factor 4 goes into the
requantization table (bias * 4, shift + 2: (4 acc m + 2^(S+1)) >> (S+2) == (acc m + 2^(S-1)) >> S).

`emit_qconv` returns None (the caller keeps the direct kernels) unless: 3x3, stride 1, dilation 1,
one group, batch 1, constant int8 weights with w_zp = 0, int8 input, K % 4 == 0, every intermediate
provably inside int32 (bounds below, from the actual weights), the requantization rewrite exact,
and the estimated instruction count lower than the direct kernel's, both from the target's kernel
description (`ctx.kernels`, ops/kernels.py), which may also turn it off.
"""
from __future__ import annotations

import numpy as np

from . import fastpath
from .kernels import Choice, Kernels

INT32_MAX = 2**31 - 1
G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], np.int64)       # G' = 2 G
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.int64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.int64)
V_MAX = 4 * 128          # |B^T d B| for int8 d: every entry sums at most 4 inputs with weights +-1
TILES_PER_CHUNK = 4      # v [16][4][C] int16 and m [4][K][16] int32 scratch


def transform_weights(w4: np.ndarray) -> np.ndarray:
    """[K, C, 3, 3] int -> U = G' g G'^T as [K, C, 4, 4] int64."""
    return np.einsum("ia,kcab,jb->kcij", G2, w4.astype(np.int64), G2)


def output_bound(u: np.ndarray) -> np.ndarray:
    """Per output channel, a bound on |A^T M A| (and on every partial sum on the way)."""
    m = V_MAX * np.abs(u).sum(axis=1)                       # [K, 4, 4]: bound on |M| = |sum_c U V|
    return np.einsum("ri,kij,sj->krs", np.abs(AT), m, np.abs(AT)).reshape(len(u), -1).max(axis=1)


def worthwhile(C: int, K: int, OH: int, OW: int, k: Kernels) -> bool:
    """Winograd's instruction estimate below the direct kernel's (the fast one needs OW % 4 == 0): per
    tile, a transform per input channel, 16 C K products, an output transform per output channel."""
    tiles = -(-OH // 2) * -(-OW // 2)
    wino = tiles * (C * k.wino_per_tile_channel + 16 * C * K * k.wino_per_product + K * k.wino_per_tile_output)
    direct_per_mac = k.direct_fast_per_mac if OW % 4 == 0 else k.direct_ref_per_mac
    return wino < direct_per_mac * 9 * C * K * OH * OW


def qconv(node, graph, g: dict, k: Kernels) -> Choice | None:
    a = node.attrs
    w = graph.const(node.inputs[1])
    if (not k.winograd or w is None or w.dtype != np.int8 or (g["KH"], g["KW"]) != (3, 3) or g["G"] != 1
            or (g["SH"], g["SW"], g["DH"], g["DW"], g["N"]) != (1, 1, 1, 1, 1) or g["K"] % 4
            or a["w_zp"] != 0 or graph.tensors[node.inputs[0]].dtype != np.int8):
        return None
    K, C, H, W, OH, OW = g["K"], g["C"], g["H"], g["W"], g["OH"], g["OW"]
    if not worthwhile(C, K, OH, OW, k):
        return None
    w4 = w.reshape(K, C, 3, 3).astype(np.int64)
    u = transform_weights(w4)
    if np.abs(u).max() > 32767:
        return None
    ybound = output_bound(u)
    bias = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else np.zeros(K, np.int64)
    bias = np.asarray(bias, np.int64).reshape(-1) - a["x_zp"] * w4.reshape(K, -1).sum(axis=1)
    if ybound.max() > INT32_MAX:
        return None
    shift = np.broadcast_to(np.asarray(a["s"], np.int64).reshape(-1), (K,)) + 2
    table = fastpath.rq_table(4 * bias, a["m"], shift, a["y_zp"], int((4 * np.abs(bias) + ybound).max()))
    if table is None:
        return None
    TH, TW = -(-OH // 2), -(-OW // 2)
    HP, WP = 2 * TH + 2, 2 * TW + 2
    if HP - H - g["PT"] < 0 or WP - W - g["PL"] < 0:
        return None
    wu = np.ascontiguousarray(u.reshape(K, C, 16).transpose(2, 0, 1)).astype(np.int16)   # [16][K][C]
    tc = TILES_PER_CHUNK

    def emit(ctx, scratch):
        wname, qname = ctx.array(node.name + "_wu", wu), fastpath.declare(ctx, node.name + "_rqw", table)
        _, vbuf, mbuf = scratch
        pad, xpad = fastpath.padded(node, g, ctx.ptr(node.inputs[0]), scratch, HP, WP)
        ctx.headers.add("td_winograd.h")
        return "\n".join(pad + [
            f"td_wino_conv({xpad}, {wname}, {qname}, {ctx.ptr(node.outputs[0])}, {vbuf}, {mbuf}, {C}, {HP}, {WP}, "
            f"{K}, {OH}, {OW}, {tc}, {a['lo']}, {a['hi']});"])
    # padded input, Winograd input tiles, Winograd products
    return Choice(fastpath.pad_scratch(g, HP, WP, always=True) + [(np.int16, 16 * tc * C), (np.int32, tc * K * 16)],
                  emit)
