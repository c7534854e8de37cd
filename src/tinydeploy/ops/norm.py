"""LayerNormalization and RMSNormalization (opset 23; also the SLM's building block): float kernels
and the integer QLayerNorm (attr rms) with no floating point at run time.

Integer derivation, per row of D int8 values x_i (scale sx, zero point zx), in x units:
  LN:  x_i - mean = c_i / D with c_i = D x_i - Σx;  var = V / D² with V = D Σx² - (Σx)²
  RMS: d_i = x_i - zx, c_i = D d_i;                 mean(d²) = V / D² with V = D Σd²
  so the normalised value n_i = c_i / sqrt(V + E), E = D² eps / sx² (the epsilon in x units).
  W = V·2^16 + round(E·2^16) keeps eps to 2^-16; W is scaled by 4^-j into [2^26, 2^28) and
  R = floor(2^30 / sqrt(W')) found by an 18-step binary search (integer rsqrt, exact floor).
  Then N_i = round(c_i R 2^-(6+j)) = n_i·2^16 (Q16), and the affine part with the output
  quantization folded in, per element: y_i = (N_i Mg_i + Bq_i + 2^(Sg-1)) >> Sg, clamped, where
  Mg_i = round(gamma_i/sy · 2^(Sg-16)) and Bq_i = round((beta_i/sy + zy)·2^Sg).
Errors: R 2^-16 relative, N 2^-17 absolute, Mg 2^-31 relative: together < 0.01 LSB, so the result
is the correctly rounded real LN except near rounding ties (measured: docs/tolerance.md).
Limits (else float fallback): D ≤ 4096, scales that keep Sg ≥ 20 and E·2^16 < 2^60.

QRMSNormDyn: RMSNorm of int16 rows into int8 rows with a run-time scale per row (the input of
QLinearDyn). z = x * G (G: gamma mantissas), (z8, M) = quantize_vec(z), T = sum x² + epsn, and the
row scale F = M * (1/sqrt(T)) * c with c = sqrt(D) 2^-Eg / qmax: 1/rms is one number per row, so it
goes into F instead of into every element (intmath.inv_sqrt_scale: relative error < 2^-13).
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .intmath import I64, inv_sqrt_scale, quantize_vec, scale_mul, scale_norm
from .quant import act_range
from .registry import prod, register

MAX_D = 4096


def view(node, shape) -> tuple[int, int]:
    """(rows, D): normalisation over the trailing dims from `axis`."""
    rank = len(shape)
    axis = node.attr("axis", -1)
    if not -rank <= axis < rank:
        raise TinydeployError(f"node {node.name} ({node.op}): axis {axis} out of range for rank {rank}")
    axis %= rank
    return prod(shape[:axis]), prod(shape[axis:])


def _affine(node, shape, value, what):
    """gamma / beta broadcast to the normalised dims, flattened to [D] (float64)."""
    rank = len(shape)
    axis = node.attr("axis", -1) % rank
    try:
        return np.broadcast_to(np.asarray(value, np.float64), tuple(shape[axis:])).reshape(-1)
    except ValueError:
        raise TinydeployError(f"node {node.name} ({node.op}): {what} of shape {list(np.shape(value))} does not "
                              f"broadcast to the normalised shape {list(shape[axis:])}") from None


def _is_rms(node) -> bool:
    return node.op == "RMSNormalization" or bool(node.attr("rms", 0))


# ---- float ----------------------------------------------------------------------------------------
def _float(node, graph, args):
    x = args[0].astype(np.float32)
    rows, D = view(node, x.shape)
    v = x.reshape(rows, D)
    eps = np.float32(node.attr("epsilon", 1e-5))
    rms = _is_rms(node)
    mean = np.zeros((rows, 1), np.float32) if rms else v.mean(axis=1, keepdims=True, dtype=np.float32)
    var = ((v - mean) ** 2).mean(axis=1, keepdims=True, dtype=np.float32)
    inv = (np.float32(1) / np.sqrt(var + eps)).astype(np.float32)
    g = _affine(node, x.shape, args[1], "scale").astype(np.float32)
    b = _affine(node, x.shape, args[2], "bias").astype(np.float32) if len(args) > 2 and args[2] is not None else 0
    y = ((v - mean) * inv * g + b).astype(np.float32).reshape(x.shape)
    outs = [y]
    if node.op == "LayerNormalization":   # optional Mean and InvStdDev outputs
        axis = node.attr("axis", -1) % x.ndim
        kept = x.shape[:axis] + (1,) * (x.ndim - axis)
        outs += [mean.reshape(kept), inv.reshape(kept)]
    return outs


def _emit(node, graph, ctx) -> str:
    x = graph.tensors[node.inputs[0]]
    if x.dtype != np.float32 or any(o for o in node.outputs[1:]):
        raise TinydeployError(f"node {node.name} ({node.op}): only float32 and the single output Y have a C kernel")
    rows, D = view(node, x.shape)
    ctx.headers.add("eltwise.h")

    def param(i, what):
        if len(node.inputs) <= i or not node.inputs[i]:
            return "NULL"
        t = graph.tensors[node.inputs[i]]
        if t.is_const:
            return ctx.array(f"{node.name}_{what}", _affine(node, x.shape, t.data, what).astype(np.float32))
        if t.size != D:
            raise TinydeployError(f"node {node.name} ({node.op}): a non-constant {what} must have the normalised shape")
        return ctx.ptr(node.inputs[i])

    eps = repr(float(np.float32(node.attr("epsilon", 1e-5)))) + "f"
    return (f"td_layernorm_f32({ctx.ptr(node.inputs[0])}, {param(1, 'scale')}, {param(2, 'bias')}, "
            f"{ctx.ptr(node.outputs[0])}, {rows}, {D}, {eps}, {int(_is_rms(node))});")


def _macs(node, graph):
    return 2 * graph.tensors[node.inputs[0]].size


def _tiling(node, graph):
    """Whole normalised rows, tiles of rows; gamma / beta (or QLayerNorm's Mg int32, Bq int64) whole."""
    from .tiles import rowwise
    rows, D = view(node, graph.tensors[node.inputs[0]].shape)
    consts = [(node.name + "_mgbq", 12 * D)] if node.op == "QLayerNorm" else []
    return rowwise(node, graph, (rows, D, 1), consts=consts)


register("LayerNormalization", emit=_emit, inplace=True, macs=_macs, header="norm.h", tiling=_tiling,
         lower=lambda m, g: lower_norm(m, g))(_float)
register("RMSNormalization", emit=_emit, inplace=True, macs=_macs, header="norm.h", tiling=_tiling,
         lower=lambda m, g: lower_norm(m, g))(_float)


# ---- int8 -----------------------------------------------------------------------------------------
def _dequant(qin, graph, name):
    """Real value of a constant input: float as is, or (q - zp)·scale along the quantization axis."""
    if qin is None:
        return graph.const(name)
    if qin.const is None:
        return None
    c = qin.const.astype(np.float64)
    shape = [1] * c.ndim
    if qin.q.per_channel:
        shape[qin.q.axis % c.ndim] = -1
    return (c - qin.q.zero_point.reshape(shape)) * qin.q.scale.astype(np.float64).reshape(shape)


def norm_params(D, eps, sx, sy, zy, gamma, beta):
    """(E16, Mg[D], Bq[D], Sg) or None when the fixed-point ranges do not hold."""
    G = gamma / sy
    Bf = (beta if beta is not None else np.zeros(D)) / sy + zy
    eg = int(np.frexp(max(np.abs(G).max(), 1e-30))[1])
    eb = int(np.frexp(max(np.abs(Bf).max(), 1e-30))[1])
    Sg = min(46 - eg, 61 - eb, 62)
    E16 = np.rint(np.float64(D) ** 2 * eps / np.float64(sx) ** 2 * 2**16)
    if Sg < 20 or not E16 < 2**60:
        return None
    Mg = np.rint(G * 2.0 ** (Sg - 16)).astype(np.int64)
    Bq = np.array([int(round(v * 2**Sg)) for v in Bf], np.int64)
    if np.abs(Mg).max() >= 2**31:
        return None
    return int(E16), Mg.astype(np.int32), Bq, Sg


def lower_norm(m, graph):
    node, x = m.node, m.ins[0]
    if x is None or x.q.per_channel or graph.tensors[x.name].dtype != np.int8:
        return None
    shape = graph.tensors[x.name].shape
    rows, D = view(node, shape)
    if D > MAX_D:
        return None
    gamma = _dequant(m.ins[1], graph, node.inputs[1])
    beta = _dequant(m.ins[2], graph, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if gamma is None or (len(node.inputs) > 2 and node.inputs[2] and beta is None):
        return None
    gamma = _affine(node, shape, gamma, "scale")
    beta = None if beta is None else _affine(node, shape, beta, "bias")
    p = norm_params(D, float(np.float32(node.attr("epsilon", 1e-5))), float(x.q.scale[0]),
                    float(m.out_q.scale[0]), int(m.out_q.zero_point[0]), gamma, beta)
    if p is None:
        return None
    lo, hi = act_range(m)
    attrs = dict(axis=node.attr("axis", -1), rms=int(_is_rms(node)), zx=int(x.q.zero_point[0]), E16=p[0],
                 Mg=p[1], Bq=p[2], Sg=p[3], lo=lo, hi=hi)
    return [Node("QLayerNorm", node.name, [x.name], [m.out], attrs)]


def _bitlen(w: np.ndarray) -> np.ndarray:
    w = w.astype(np.uint64)
    return sum(((w >> np.uint64(k)) > 0).astype(np.int64) for k in range(64))


def rsqrt_q30(w: np.ndarray) -> np.ndarray:
    """td_rsqrt_q30: largest R < 2^18 with R² w ≤ 2^60, for w in [2^26, 2^28)."""
    w = w.astype(np.uint64)
    R = np.zeros_like(w)
    for b in range(17, -1, -1):
        t = R | np.uint64(1 << b)
        R = np.where(t * t * w <= np.uint64(1 << 60), t, R)
    return R.astype(np.int64)


@register("QLayerNorm", header="norm.h", inplace=True, macs=_macs, emit=lambda n, g, c: _emit_q(n, g, c),
          tiling=_tiling)
def qlayernorm(node, graph, args):
    a = node.attrs
    x = args[0]
    rows, D = view(node, x.shape)
    z = a["zx"] if a["rms"] else 0
    d = x.reshape(rows, D).astype(np.int64) - z
    s, sq = d.sum(axis=1, keepdims=True), (d * d).sum(axis=1, keepdims=True)
    V = D * sq - (0 if a["rms"] else s * s)
    w = (V << 16) + a["E16"]
    j = -((28 - _bitlen(w)) // 2)
    wn = np.where(j >= 0, w >> np.maximum(j, 0) * 2, w << np.maximum(-j, 0) * 2)
    R = np.where(w > 0, rsqrt_q30(np.where(w > 0, wn, 1 << 26)), 0)
    sh = 6 + j
    c = D * d - (0 if a["rms"] else s)
    N = np.where(sh >= 1, (c * R + (np.int64(1) << np.maximum(sh - 1, 0))) >> np.maximum(sh, 1), 0)
    Mg, Bq = np.asarray(a["Mg"], np.int64), np.asarray(a["Bq"], np.int64)
    y = (N * Mg + Bq + (np.int64(1) << (a["Sg"] - 1))) >> a["Sg"]
    return [np.clip(y, a["lo"], a["hi"]).astype(np.int8).reshape(x.shape)]


def _emit_q(node, graph, ctx) -> str:
    a = node.attrs
    rows, D = view(node, graph.tensors[node.inputs[0]].shape)
    ctx.headers.add("eltwise.h")
    mg = ctx.array(node.name + "_mg", np.asarray(a["Mg"], np.int32))
    bq = ctx.array(node.name + "_bq", np.asarray(a["Bq"], np.int64))
    return (f"td_layernorm_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {rows}, {D}, {a['rms']}, "
            f"{a['zx']}, INT64_C({a['E16']}), {mg}, {bq}, {a['Sg']}, {a['lo']}, {a['hi']});")


# ---- int16 -> int8 with a run-time row scale --------------------------------------------------------
def rmsnorm_dyn(x, G, epsn: int, c, qmax: int):
    """(z8, F): quantize_vec(x * G) and the row scale F = M * inv_sqrt(sum x^2 + epsn) * c."""
    x = np.asarray(x, I64)
    z8, M = quantize_vec(x * np.asarray(G, I64), qmax)
    T = np.maximum((x * x).sum(axis=-1) + epsn, 1)
    return z8, scale_mul(scale_mul(scale_norm(M, 0), inv_sqrt_scale(T)), c)


def _emit_dyn(node, g, ctx) -> str:
    from .linear import c_scale
    x, _, G = node.inputs
    a = node.attrs
    return (f"td_rmsnorm_dyn({ctx.ptr(x)}, {ctx.rows(node)}, {g.tensors[x].shape[1]}, {ctx.ptr(G)}, "
            f"INT64_C({a['epsn']}), {c_scale(a['c'])}, {a['qmax']}, {ctx.ptr(node.outputs[0])}, "
            f"{ctx.ptr(node.outputs[1])});")


@register("QRMSNormDyn", header="norm.h", rows=1, macs=_macs, emit=_emit_dyn)
def qrmsnorm_dyn(node, graph, args):
    from .linear import scale_tensor
    x, _, G = args
    a = node.attrs
    z8, F = rmsnorm_dyn(x, G, a["epsn"], a["c"], a["qmax"])
    return [z8.astype(np.int8), scale_tensor(F)]
