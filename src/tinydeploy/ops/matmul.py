"""MatMul (numpy semantics: 1-D promotion, batched, broadcast), Gemm (alpha, beta, transA, transB, C),
MatMulInteger, and the integer QMatMul they lower to.

QMatMul: inputs a, b, bias?; attrs ta (A stored [K, M]), tb (B stored [..., N, K]), a_zp, b_zp,
m[N or 1], s[N or 1], y_zp, lo, hi.
    acc[.., m, n] = bias[n] + Σ_k (A[m, k] - a_zp) (B[k, n] - b_zp)
    y = clamp(requant(acc, m[n], s[n]) + y_zp, lo, hi)
Constant weights are stored transposed ([N, K], tb = 1) so both inner-product operands are
contiguous, and A's zero point is folded into the bias: Σ (a - za)(b - zb) = Σ a (b - zb) - za Σ (b - zb).
One rounding per output (td_requant), so QDQ MatMul/Gemm match onnxruntime within 1 LSB.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .conv import _flt, int_bias, requant_params
from .quant import BiasIn, bias_in, requant, zero_point_scalar
from .registry import prod, register

INT32_MAX = 2**31 - 1


# ---- geometry ----------------------------------------------------------------------------------
def dims(ashape, bshape, ta=0, tb=0):
    """(M, K, N, out batch shape, a batch shape, b batch shape) of A' @ B'. A' is A (ta: its last two
    axes swapped), B' likewise; 1-D operands are promoted as numpy does."""
    ashape, bshape = list(ashape), list(bshape)
    if len(ashape) == 1:
        ashape = [1] + ashape if not ta else ashape + [1]
    if len(bshape) == 1:
        bshape = bshape + [1] if not tb else [1] + bshape
    M, K = (ashape[-1], ashape[-2]) if ta else (ashape[-2], ashape[-1])
    K2, N = (bshape[-1], bshape[-2]) if tb else (bshape[-2], bshape[-1])
    if K != K2:
        raise TinydeployError(f"matmul: inner dimensions differ ({list(ashape)} x {list(bshape)})")
    try:
        batch = tuple(np.broadcast_shapes(tuple(ashape[:-2]), tuple(bshape[:-2])))
    except ValueError:
        raise TinydeployError(f"matmul: batch dimensions {ashape[:-2]} and {bshape[:-2]} do not broadcast") from None
    return M, K, N, batch, tuple(ashape[:-2]), tuple(bshape[:-2])


def _batch_calls(M, K, N, batch, abatch, bbatch):
    """[(count, a_stride, b_stride, a_off, b_off, y_off)] in elements: one call when the operands'
    batch offsets are arithmetic progressions (contiguous or broadcast), else one call per batch."""
    nb = prod(batch)
    ia = np.broadcast_to(np.arange(prod(abatch)).reshape(abatch), batch).reshape(-1) * (M * K)
    ib = np.broadcast_to(np.arange(prod(bbatch)).reshape(bbatch), batch).reshape(-1) * (K * N)
    if nb <= 1:
        return [(1, 0, 0, 0, 0, 0)]
    sa, sb = int(ia[1] - ia[0]), int(ib[1] - ib[0])
    steps = np.arange(nb)
    if np.array_equal(ia, steps * sa) and np.array_equal(ib, steps * sb):
        return [(nb, sa, sb, 0, 0, 0)]
    return [(1, 0, 0, int(ia[i]), int(ib[i]), i * M * N) for i in range(nb)]


def _strides(M, K, N, ta, tb):
    """(sam, sak, sbk, sbn) element strides of A'[m, k] and B'[k, n] in their stored layouts."""
    return (1, M) if ta else (K, 1), (1, K) if tb else (N, 1)


def _calls(node, graph, ctx, ta, tb, fmt):
    """C calls for every batch group; fmt(a_expr, b_expr, y_expr, geometry_args) -> str."""
    a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
    M, K, N, batch, abatch, bbatch = dims(graph.tensors[a].shape, graph.tensors[b].shape, ta, tb)
    (sam, sak), (sbk, sbn) = _strides(M, K, N, ta, tb)
    groups = _batch_calls(M, K, N, batch, abatch, bbatch)
    if len(groups) == 1 and groups[0][2] == 0 and groups[0][1] == M * K and not ta:
        groups = [(1, 0, 0, 0, 0, 0)]   # batched A times one B: a single [B*M, K] x [K, N] product
        M = M * prod(batch)
    out = []
    for count, sa, sb, ao, bo, yo in groups:
        off = lambda p, o: p if not o else f"{p} + {o}"  # noqa: E731
        geo = f"{count}, {M}, {N}, {K}, {sa}, {sam}, {sak}, {sb}, {sbk}, {sbn}"
        out.append(fmt(off(ctx.ptr(a), ao), off(ctx.ptr(b), bo), off(ctx.ptr(y), yo), geo))
    return "\n".join(out)


def mm_macs(node, graph) -> int:
    a, b = graph.tensors[node.inputs[0]].shape, graph.tensors[node.inputs[1]].shape
    ta, tb = _trans(node)
    M, K, N, batch, _, _ = dims(a, b, ta, tb)
    return prod(batch) * M * K * N


def _trans(node):
    """(A stored transposed, B stored transposed): Gemm's attributes, QMatMul's, and MatMulInteger's
    internal `tb` (a Transpose of B folded away by passes/integerize.py)."""
    if node.op in ("Gemm", "QMatMul"):
        key = ("transA", "transB") if node.op == "Gemm" else ("ta", "tb")
        return int(node.attr(key[0], 0)), int(node.attr(key[1], 0))
    return 0, int(node.attr("tb", 0)) if node.op == "MatMulInteger" else 0


def _tiling(node, graph):
    """Tiles of rows M and columns N (and batch), the whole K per output (requantized after the
    sum); biases, Gemm's C and per-column parameters sliced with N (and M)."""
    from .tiles import matmul_like
    a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
    ta, tb = _trans(node)
    M, K, N, _, _, _ = dims(graph.tensors[a].shape, graph.tensors[b].shape, ta, tb)
    extra = []
    if node.op == "MatMulInteger":
        extra = [(z, z, (graph.tensors[z].size,), 0, (None,)) for z in node.inputs[2:] if z]
    elif len(node.inputs) > 2 and node.inputs[2]:
        c = node.inputs[2]
        cm, cn = ((1, 1) + tuple(graph.tensors[c].shape))[-2:]
        if graph.tensors[c].size != cm * cn:
            return None
        extra.append((c, c, (cm, cn), 0, ("M" if cm == M > 1 else None, "N" if cn == N > 1 else None)))
    if node.op == "QMatMul" and np.size(node.attrs["m"]) > 1:   # m (int32) and s (int8) per column
        extra.append((node.name + "_rq", None, (N,), 5, ("N",)))
    return matmul_like(node, graph, a, b, y, ta, tb, extra, mm_macs(node, graph), prod(graph.tensors[y].shape),
                       per_n_attrs=("m", "s") if node.op == "QMatMul" else ())


# ---- float32, and MatMul of wider integers -------------------------------------------------------
_WRAP = {np.dtype(np.int32): "s32", np.dtype(np.uint32): "u32", np.dtype(np.int64): "s64", np.dtype(np.uint64): "u64"}


def _emit_float(node, graph, ctx) -> str:
    ta, tb = _trans(node)
    sfx = _WRAP.get(np.dtype(graph.tensors[node.outputs[0]].dtype))
    if node.op == "MatMul" and sfx:   # ONNX's integer MatMul: sums wrap (td_matmul_s32, ...)
        return _calls(node, graph, ctx, ta, tb, lambda a, b, y, g: f"td_matmul_{sfx}({a}, {b}, {y}, {g});")
    for n in node.inputs[:2] + node.outputs[:1]:
        if graph.tensors[n].dtype != np.float32:
            raise TinydeployError(f"node {node.name} ({node.op}): only float32 tensors have a C kernel, "
                                  f"'{n}' is {np.dtype(graph.tensors[n].dtype)}")
    lo, hi = node.attr("act", (None, None))
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    c, scm, scn = "NULL", 0, 0
    if node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
        M, K, N, _, _, _ = dims(graph.tensors[node.inputs[0]].shape, graph.tensors[node.inputs[1]].shape, ta, tb)
        cshape = (1, 1) + tuple(graph.tensors[node.inputs[2]].shape)
        cm, cn = cshape[-2], cshape[-1]
        c, scm, scn = ctx.ptr(node.inputs[2]), (cn if cm == M and M > 1 else 0), (1 if cn == N and N > 1 else 0)
    tail = f"{scm}, {scn}, {_flt(alpha, '')}, {_flt(beta, '')}, {_flt(lo, '-INFINITY')}, {_flt(hi, 'INFINITY')}"
    return _calls(node, graph, ctx, ta, tb, lambda a, b, y, g: f"td_matmul_f32({a}, {b}, {c}, {y}, {g}, {tail});")


def _clip(node, y):
    lo, hi = node.attr("act", (None, None))
    if lo is None and hi is None:
        return y
    return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi).astype(np.float32)


@register("MatMul", emit=_emit_float, macs=mm_macs, header="matmul.h", tiling=_tiling, lower=lambda m, g: lower_matmul(m, g))
def matmul_f32(node, graph, args):
    a, b = args
    if a.dtype.kind in "iu":
        return [np.matmul(a, b)]
    return [_clip(node, np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float32))]


@register("Gemm", emit=_emit_float, macs=mm_macs, header="matmul.h", tiling=_tiling, lower=lambda m, g: lower_gemm(m, g))
def gemm_f32(node, graph, args):
    a, b = args[0].astype(np.float32), args[1].astype(np.float32)
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = np.float32(node.attr("alpha", 1.0)) * (a @ b)
    if len(args) > 2 and args[2] is not None:
        y = y + np.float32(node.attr("beta", 1.0)) * args[2].astype(np.float32)
    return [_clip(node, y.astype(np.float32))]


# ---- MatMulInteger -----------------------------------------------------------------------------


def _emit_mmint(node, graph, ctx) -> str:
    sa, sb = (("s8" if graph.tensors[n].dtype == np.int8 else "u8") for n in node.inputs[:2])
    azp, bzp = zero_point_scalar(node, graph, 2), zero_point_scalar(node, graph, 3)
    return _calls(node, graph, ctx, *_trans(node),
                  lambda a, b, y, g: f"td_matmul_int_{sa}{sb}({a}, {b}, {y}, {g}, {azp}, {bzp});")


@register("MatMulInteger", emit=_emit_mmint, macs=mm_macs, header="matmul.h", tiling=_tiling)
def matmul_integer(node, graph, args):
    azp = args[2] if len(args) > 2 and args[2] is not None else 0
    bzp = args[3] if len(args) > 3 and args[3] is not None else 0
    a = args[0].astype(np.int64) - np.asarray(azp, np.int64).reshape(-1, 1) if np.size(azp) > 1 \
        else args[0].astype(np.int64) - np.int64(np.asarray(azp).reshape(-1)[0])
    b = args[1].astype(np.int64)
    b = (np.swapaxes(b, -1, -2) if node.attr("tb", 0) else b) - np.asarray(bzp, np.int64).reshape(-1)
    return [np.matmul(a, b).astype(np.int32)]


# ---- integer QMatMul ---------------------------------------------------------------------------
def _emit_qmatmul_fast(node, graph, ctx) -> str | None:
    """Register-blocked kernel (td_fast.h) for constant [N, K] weights with both zero points folded."""
    from . import fastpath
    a = node.attrs
    w = graph.const(node.inputs[1])
    if not ctx.kernels.fast or w is None or w.ndim != 2 or a["ta"] or not a["tb"] or a["a_zp"] or a["b_zp"]:
        return None
    N, K = w.shape
    if N % 4 or graph.tensors[node.inputs[0]].dtype != np.int8:
        return None
    bias = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else np.zeros(N, np.int32)
    wabs = np.abs(w.astype(np.int64)).sum(axis=1)
    table = fastpath.rq_table(bias, a["m"], a["s"], a["y_zp"], int((wabs * 128 + np.abs(bias)).max()))
    if table is None:
        return None
    ok = []

    def fmt(x, wp, y, geo):
        count, M, n, k, _, sam, sak, _, sbk, sbn = (int(v) for v in geo.split(", "))
        ok.append(count == 1 and sam == K and sak == 1 and sbk == 1 and sbn == K)
        return f"td_mm_fast({x}, {wp}, {{q}}, {y}, {M}, {N}, {K}, {a['lo']}, {a['hi']});"
    calls = _calls(node, graph, ctx, 0, 1, fmt)
    if not all(ok):
        return None
    return calls.replace("{q}", fastpath.declare(ctx, node.name + "_rq", table))


def _emit_qmatmul(node, graph, ctx) -> str:
    fast = _emit_qmatmul_fast(node, graph, ctx)
    if fast is not None:
        return fast
    a = node.attrs
    ta, tb = _trans(node)
    bias = ctx.ptr(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    mult = ctx.array(node.name + "_m", np.asarray(a["m"], np.int32))
    shift = ctx.array(node.name + "_s", np.asarray(a["s"], np.int8))
    pc = int(np.size(a["m"]) > 1)
    tail = f"{a['a_zp']}, {a['b_zp']}, {mult}, {shift}, {pc}, {a['y_zp']}, {a['lo']}, {a['hi']}"
    return _calls(node, graph, ctx, ta, tb, lambda x, w, y, g: f"td_matmul_s8({x}, {w}, {bias}, {y}, {g}, {tail});")


@register("QMatMul", emit=_emit_qmatmul, macs=mm_macs, header="matmul.h", tiling=_tiling)
def qmatmul(node, graph, args):
    at = node.attrs
    a = args[0].astype(np.int64) - at["a_zp"]
    b = args[1].astype(np.int64) - at["b_zp"]
    if at["ta"]:
        a = np.swapaxes(a, -1, -2)
    if at["tb"]:
        b = np.swapaxes(b, -1, -2)
    acc = np.matmul(a, b)
    if len(args) > 2 and args[2] is not None:
        acc = acc + args[2].astype(np.int64)
    m, s = np.asarray(at["m"], np.int64), np.asarray(at["s"], np.int64)
    y = requant(acc, m if m.size > 1 else m[0], s if s.size > 1 else s[0])
    return [np.clip(y + at["y_zp"], at["lo"], at["hi"]).astype(np.int8)]


def _weight_scales(w, n: int, axis: int):
    """Per-column scales of B' (length n), or None when B's quantization axis is not B's N axis."""
    if w.q.per_channel and (w.q.axis is None or w.q.axis != axis or w.q.scale.size != n):
        return None
    return np.broadcast_to(w.q.scale.astype(np.float32), (n,))


def _qmatmul(m, graph, a, b, ta: int, tb: int, N: int, K: int, sw, biases=(), alpha=1.0):
    """Build the QMatMul node, or None when it cannot be exact."""
    if a is None or b is None or a.q.per_channel or (b.const is None and b.q.per_channel):
        return None
    if b.const is not None and b.const.dtype != np.int8 or graph.tensors[a.name].dtype != np.int8:
        return None
    bzp = np.unique(b.q.zero_point)
    if bzp.size != 1 or alpha <= 0:
        return None
    bzp = int(bzp[0])
    if m.pooled:
        return _qpoolmatmul(m, graph, a, b, ta, tb, N, K, sw, biases, alpha, bzp)
    azp, mult, shift, yzp, lo, hi = requant_params(m, sw * np.float32(alpha), N)
    wname = b.name
    bias = int_bias(list(biases) + [m.bias], N, np.float32(m.ins[0].q.scale[0]) * sw.astype(np.float32) * alpha)
    if b.const is not None and b.const.ndim >= 2:
        if b.const.ndim == 2:   # fold A's zero point into the bias
            colsum = (b.const.astype(np.int64) - bzp).sum(axis=1 if tb else 0)
            bias = (np.zeros(N) if bias is None else bias) - azp * colsum
            azp = 0
        if not tb:  # store [.., N, K]: contiguous inner products
            wname, tb = graph.add_const(b.name + "_nk", np.ascontiguousarray(np.swapaxes(b.const, -1, -2))), 1
    amax = 128 + abs(azp)
    if K * amax * (128 + abs(bzp)) + (0 if bias is None else np.abs(bias).max()) > INT32_MAX:
        return None   # the int32 accumulator could overflow: stay in float
    ins = [a.name, wname]
    if bias is not None:
        ins.append(graph.add_const(m.node.name + "_bias", bias.astype(np.int32)))
    attrs = dict(ta=ta, tb=tb, a_zp=azp, b_zp=bzp, m=mult, s=shift, y_zp=yzp, lo=lo, hi=hi)
    return [Node("QMatMul", m.node.name, ins, [m.out], attrs)]


# ---- QPoolMatMul: a global average pool feeding a linear layer, in integers ----------------------
def _qpoolmatmul(m, graph, a, b, ta, tb, N, K, sw, biases, alpha, bzp):
    """GlobalAveragePool(DQ(x)) → (Flatten) → MatMul/Gemm(DQ(W)) → Q, exactly: the pool's 1/(H·W)
    moves into the requantization multiplier, so there is one rounding as in any QMatMul."""
    hw = m.pooled
    if b.const is None or b.const.ndim != 2 or ta or bzp:
        return None
    w = np.ascontiguousarray(b.const if tb else b.const.T)   # [N, C]
    xzp = int(a.q.zero_point[0])
    _, mult, shift, yzp, lo, hi = requant_params(m, sw.astype(np.float64) * alpha / hw, N)
    bias = int_bias(list(biases) + [m.bias], N, np.float32(a.q.scale[0]) * sw * np.float32(alpha), per=hw)
    if K * hw * (128 + abs(xzp)) * 128 + (0 if bias is None else np.abs(bias.astype(np.int64)).max()) > INT32_MAX:
        return None
    ins = [a.name, graph.add_const(m.node.name + "_w", w)]
    if bias is not None:
        ins.append(graph.add_const(m.node.name + "_bias", bias))
    attrs = dict(C=K, HW=hw, N=N, x_zp=xzp, m=mult, s=shift, y_zp=yzp, lo=lo, hi=hi)
    return [Node("QPoolMatMul", m.node.name, ins, [m.out], attrs)]


def _emit_qpoolmatmul(node, graph, ctx) -> str:
    a = node.attrs
    bias = ctx.ptr(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    mult = ctx.array(node.name + "_m", np.asarray(a["m"], np.int32))
    shift = ctx.array(node.name + "_s", np.asarray(a["s"], np.int8))
    sums, = ctx.scratch([(np.int32, a["C"])])
    return (f"td_pool_matmul_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.inputs[1])}, {bias}, "
            f"{ctx.ptr(node.outputs[0])}, {sums}, {a['C']}, {a['HW']}, {a['N']}, {a['x_zp']}, {mult}, {shift}, "
            f"{int(np.size(a['m']) > 1)}, {a['y_zp']}, {a['lo']}, {a['hi']});")


@register("QPoolMatMul", emit=_emit_qpoolmatmul, header="matmul.h",
          macs=lambda n, g: n.attrs["C"] * (n.attrs["HW"] + n.attrs["N"]),
          scratch=lambda n, g, k: 4 * n.attrs["C"])
def qpoolmatmul(node, graph, args):
    a = node.attrs
    sums = (args[0].astype(np.int64).reshape(a["C"], a["HW"]) - a["x_zp"]).sum(axis=1)
    acc = args[1].astype(np.int64) @ sums
    if len(args) > 2 and args[2] is not None:
        acc = acc + args[2].astype(np.int64)
    m, s = np.asarray(a["m"], np.int64), np.asarray(a["s"], np.int64)
    y = requant(acc, m, s) + a["y_zp"]
    return [np.clip(y, a["lo"], a["hi"]).astype(np.int8).reshape(graph.tensors[node.outputs[0]].shape)]


def lower_matmul(m, graph):
    a, b = m.ins[0], m.ins[1]
    if a is None or b is None:
        return None
    bshape = graph.tensors[b.name].shape
    M, K, N, _, _, _ = dims(graph.tensors[m.node.inputs[0]].shape, bshape)
    sw = _weight_scales(b, N, len(bshape) - 1)
    return None if sw is None else _qmatmul(m, graph, a, b, 0, 0, N, K, sw)


def lower_gemm(m, graph):
    node, a, b = m.node, m.ins[0], m.ins[1]
    if a is None or b is None:
        return None
    ta, tb = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    M, K, N, _, _, _ = dims(graph.tensors[node.inputs[0]].shape, graph.tensors[b.name].shape, ta, tb)
    sw = _weight_scales(b, N, 0 if tb else 1)
    if sw is None:
        return None
    c = None
    if len(node.inputs) > 2 and node.inputs[2]:
        c, cshape = bias_in(m.ins[2], graph.const(node.inputs[2])), (1, 1) + tuple(graph.tensors[node.inputs[2]].shape)
        if c is None or len(cshape) > 4 or cshape[-2] != 1 or cshape[-1] not in (1, N):   # only a per-column bias
            return None
        beta = float(node.attr("beta", 1.0))
        if beta != 1.0:
            c = BiasIn(c.real * beta, None, None)
    return _qmatmul(m, graph, a, b, ta, tb, N, K, sw, [c], float(node.attr("alpha", 1.0)))
